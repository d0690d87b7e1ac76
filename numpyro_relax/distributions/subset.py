"""Relaxed k-subsets: Gumbel top-k with successive soft masking (Xie & Ermon, 2019)."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax, random
from jax.scipy.special import logsumexp
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import _default_vmap_over, vmap_over
from numpyro.distributions.util import lazy_property, validate_sample

from numpyro_relax.distributions.categorical import _OneHotLogits
from numpyro_relax.distributions.constraints import relaxed_k_hot
from numpyro_relax.distributions.util import all_concrete, log1mexp, straight_through

__all__ = ["GumbelSoftmaxTopK", "subset_log_prob"]

#: Up to this many elements the subset probability sums over all orderings (k! terms);
#: above it, the one-dimensional integral of Kool et al. (2020) is used.
MAX_ENUMERATED_K = 4
_GRID_STEP = 0.25


def relaxed_top_k(perturbed: jax.Array, k: int, temperature: jax.Array) -> jax.Array:
    r"""Successive softmax with soft masking (Xie & Ermon 2019, Plötz & Roth 2018).

    :math:`\alpha^{(1)} = r`, :math:`a^{(j)} = \operatorname{softmax}(\alpha^{(j)}/\tau)`,
    :math:`\alpha^{(j+1)} = \alpha^{(j)} + \log(1 - a^{(j)})`, result :math:`\sum_j a^{(j)}`.
    Done in log space with ``lax.scan`` over the k steps; ``log(1 - a)`` is clamped finite.
    """
    t = temperature[..., None]

    def step(alpha, _):
        log_a = jax.nn.log_softmax(alpha / t, axis=-1)
        return alpha + log1mexp(log_a), jnp.exp(log_a)

    # unrolled: k is small and static, and XLA:CPU then fuses across the steps (~2x faster)
    _, steps = lax.scan(step, perturbed, None, length=k, unroll=True)
    return jnp.sum(steps, axis=0)


def k_hot_of_top_k(perturbed: jax.Array, k: int) -> jax.Array:
    """Exact k-hot vector of the ``k`` largest entries over the last axis."""
    _, idx = lax.top_k(perturbed, k)
    return jnp.sum(jax.nn.one_hot(idx, perturbed.shape[-1], dtype=perturbed.dtype), axis=-2)


@functools.cache
def _ordering_tables(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Static tables for :func:`_log_prob_enumerated`.

    ``members[s - 1]`` is the membership mask of the non-empty subset with bitmask ``s``;
    ``tails[o, j]`` is the row of ``members`` holding ``{sigma_j, ..., sigma_k}`` for the
    ``o``-th ordering ``sigma`` of the k members.
    """
    members = (np.arange(1, 2**k)[:, None] >> np.arange(k)) & 1
    orderings = np.array(list(itertools.permutations(range(k))))
    bits = 1 << orderings  # (k!, k)
    tails = np.cumsum(bits[:, ::-1], axis=1)[:, ::-1] - 1
    return members.astype(bool), tails


def _log_prob_enumerated(log_p_members: jax.Array, log_p_rest: jax.Array) -> jax.Array:
    r"""Sum over the k! orderings of :math:`\prod_j p_{\sigma_j} / (1 - \sum_{i<j} p_{\sigma_i})`.

    The numerator is the same for every ordering and each denominator
    :math:`1 - \sum_{i<j} p_{\sigma_i} = p_{\bar S} + \sum_{i \ge j} p_{\sigma_i}` depends only
    on the set of members still to come, so the :math:`2^k - 1` denominators are computed once
    (log space, no cancellation) and gathered by a static table:
    :math:`\log P(S) = \sum_{i \in S} \log p_i + \operatorname{logsumexp}_\sigma
    \big(-\sum_j \log D_{\{\sigma_j..\sigma_k\}}\big)`.
    """
    members, tails = _ordering_tables(log_p_members.shape[-1])
    subset_terms = jnp.where(members, log_p_members[..., None, :], -jnp.inf)  # (..., 2^k-1, k)
    log_denoms = jnp.logaddexp(logsumexp(subset_terms, axis=-1), log_p_rest[..., None])
    per_ordering = -jnp.sum(log_denoms[..., tails], axis=-1)  # (..., k!)
    return jnp.sum(log_p_members, axis=-1) + logsumexp(per_ordering, axis=-1)


def _log_prob_integral(log_p_members: jax.Array, log_p_rest: jax.Array) -> jax.Array:
    r"""Kool et al. (2020): :math:`P(S) = \int_0^1 \prod_{i\in S}(1 - u^{p_i/p_{\bar S}})\,du`.

    With :math:`u = \exp(-e^w)` the integrand becomes
    :math:`\exp(w - e^w)\prod_i (1 - \exp(-a_i e^w))`, :math:`a_i = p_i/p_{\bar S}`, a smooth
    function of :math:`w` that decays exponentially on both sides; the trapezoid rule on a fixed
    grid of step 0.25 is then accurate to far below float32 precision, and the sum is a
    ``logsumexp``. The grid covers :math:`w \in [-(k + 40), \log(k+1) + 4]`, outside of which the
    integrand carries less than :math:`e^{-30}` of the mass (it grows at least like
    :math:`e^{w}` below 0 and at most like :math:`e^{(k+1)w}`).
    """
    k = log_p_members.shape[-1]
    lo, hi = -(k + 40.0), math.log(k + 1.0) + 4.0
    n = int(math.ceil((hi - lo) / _GRID_STEP)) + 1
    w = jnp.linspace(lo, hi, n, dtype=log_p_members.dtype)
    log_a = (log_p_members - log_p_rest[..., None])[..., None, :]  # (..., 1, k)
    z = log_a + w[:, None]  # (..., n, k): log(a_i e^w)
    # log(1 - exp(-e^z)), with the small-z branch z - e^z / 2 (exact to e^{2z}).
    z_safe = jnp.where(z < -10.0, 0.0, z)
    log_factor = jnp.where(z < -10.0, z - 0.5 * jnp.exp(z), jnp.log(-jnp.expm1(-jnp.exp(z_safe))))
    log_integrand = jnp.sum(log_factor, axis=-1) + w - jnp.exp(w)
    return logsumexp(log_integrand, axis=-1) + math.log((hi - lo) / (n - 1))


def subset_log_prob(value: ArrayLike, logits: ArrayLike, k: int) -> jax.Array:
    r"""Log probability that Gumbel top-k (sampling ``k`` without replacement) picks the set
    marked by the k-hot ``value``.

    Sums over the :math:`k!` orderings for ``k <= MAX_ENUMERATED_K`` and uses the integral form
    of Kool et al. (2020) otherwise; both are exact up to float rounding.
    """
    value = jnp.asarray(value)
    logp = jax.nn.log_softmax(jnp.asarray(logits), axis=-1)
    logp = jnp.broadcast_to(logp, jnp.broadcast_shapes(logp.shape, value.shape))
    num = logp.shape[-1]
    if k == num:
        return jnp.zeros(logp.shape[:-1], logp.dtype)
    member = value > 0.5
    _, idx = lax.top_k(value, k)
    log_p_members = jnp.take_along_axis(logp, idx, axis=-1)
    log_p_rest = logsumexp(jnp.where(member, -jnp.inf, logp), axis=-1)
    if k <= MAX_ENUMERATED_K:
        return _log_prob_enumerated(log_p_members, log_p_rest)
    return _log_prob_integral(log_p_members, log_p_rest)


class GumbelSoftmaxTopK(_OneHotLogits):
    r"""Relaxed k-subset (k-hot) sample by Gumbel top-k with successive soft masking.

    Perturbed scores :math:`r = \ell + g` (one Gumbel per element); the hard sample is the k-hot
    vector of the top-k of :math:`r`, which is an exact sample of drawing k categories without
    replacement from :math:`\mathrm{Cat}(\pi)`. The relaxation (Xie & Ermon, 2019) is

    .. math::
        a^{(j)} = \operatorname{softmax}(\alpha^{(j)}/\tau),\quad
        \alpha^{(j+1)} = \alpha^{(j)} + \log(1 - a^{(j)}),\quad \alpha^{(1)} = r,\quad
        x = \sum_{j=1}^k a^{(j)},

    a point of :math:`\{x \ge 0 : \sum x = k\}` that tends to the hard sample as
    :math:`\tau \to 0` (at high temperature an entry can exceed 1, so the support is declared
    as that scaled simplex). ``hard=True`` returns the exact k-hot forward value with the gradient of
    :math:`x` (straight-through).

    ``log_prob`` of a k-hot value is the exact probability of that *unordered* subset,
    :math:`\sum_{\sigma} \prod_j \pi_{\sigma_j}/(1 - \sum_{i<j}\pi_{\sigma_i})`, summed over
    orderings for ``k <= 4`` and computed by the integral of Kool et al. (2020) above that. The
    relaxed values have no closed-form density: ``log_prob`` raises a ``ValueError`` for a value
    that is not k-hot (``nan`` under ``jit``) rather than return a wrong number.

    :param int k: subset size, ``1 <= k <= K``.
    :param temperature: positive temperature :math:`\tau`.
    :param probs: category probabilities (exactly one of ``probs``/``logits``).
    :param logits: unnormalised log probabilities :math:`\ell`.
    :param bool hard: straight-through k-hot forward values.

    **References:**

    1. *Reparameterizable Subset Sampling via Continuous Relaxations*, S. M. Xie, S. Ermon (IJCAI 2019).
    2. *Stochastic Beams and Where to Find Them*, W. Kool, H. van Hoof, M. Welling (ICML 2019).
    3. *Estimating Gradients for Discrete Random Variables by Sampling without Replacement*,
       W. Kool, H. van Hoof, M. Welling (ICLR 2020), eq. for :math:`p(S)`.
    """

    arg_constraints = {
        "temperature": constraints.positive,
        "probs": constraints.simplex,
        "logits": constraints.real_vector,
    }
    pytree_data_fields = ("temperature", "logits")
    pytree_aux_fields = ("k", "hard")
    reparametrized_params = ["temperature", "probs", "logits"]

    def __init__(
        self,
        k: int,
        temperature: ArrayLike,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        hard: bool = False,
        *,
        validate_args: bool | None = None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"GumbelSoftmaxTopK: `k` must be a Python int, got {k!r}.")
        self.k = int(k)
        self.hard = bool(hard)
        self._setup(probs, logits, validate_args, temperature=temperature)
        num = self.event_shape[-1]
        if not 1 <= self.k <= num:
            raise ValueError(f"GumbelSoftmaxTopK: `k` must satisfy 1 <= k <= K={num}, got {k}.")

    @lazy_property
    def support(self) -> constraints.Constraint:
        return relaxed_k_hot(self.k)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        shape = sample_shape + self.batch_shape + self.event_shape
        perturbed = self.logits + random.gumbel(key, shape, dtype=self.logits.dtype)
        soft = relaxed_top_k(perturbed, self.k, jnp.broadcast_to(self.temperature, shape[:-1]))
        if self.hard:
            return straight_through(k_hot_of_top_k(perturbed, self.k), soft)
        return soft

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        value = jnp.asarray(value)
        is_k_hot = jnp.all((value == 0) | (value == 1), axis=-1) & (jnp.sum(value, -1) == self.k)
        if all_concrete(is_k_hot) is False:
            raise ValueError(
                "GumbelSoftmaxTopK.log_prob is the probability of a hard k-subset; got a value "
                "that is not k-hot. Relaxed samples have no closed-form density: use hard=True."
            )
        return jnp.where(is_k_hot, subset_log_prob(value, self.logits, self.k), jnp.nan)

    @property
    def mean(self) -> jax.Array:
        """Inclusion probabilities of the hard subset are not closed-form for ``1 < k < K``."""
        if self.k == 1:
            return self.probs
        if self.k == self.event_shape[-1]:
            return jnp.ones_like(self.probs)
        raise NotImplementedError


@vmap_over.register
def _(dist: GumbelSoftmaxTopK, temperature=None, probs=None, logits=None):
    return _default_vmap_over(
        dist, temperature=temperature, logits=logits if logits is not None else probs
    )
