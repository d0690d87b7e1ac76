"""The one-hot family: the categorical law on one-hot vectors and its Gumbel-softmax relaxations.

Every class takes exactly one of ``probs`` or ``logits`` (keyword), like NumPyro's
``Categorical``, and computes with logits (``probs`` is a lazy property). Samples are drawn with
one Gumbel variable per element of ``sample_shape + batch_shape + event_shape``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import random
from jax.scipy.special import gammaln, logsumexp
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import vmap_over
from numpyro.distributions.distribution import Distribution
from numpyro.distributions.util import lazy_property, validate_sample

from numpyro_relax.distributions.constraints import log_simplex, one_hot
from numpyro_relax.distributions.util import (
    broadcast_batch,
    categorical_entropy,
    check_positive,
    no_closed_form,
    one_hot_argmax,
    safe_log,
    select_logits,
    simplex_from_log,
    straight_through,
    validation_on,
    vmap_over_logits,
)

__all__ = [
    "DecoupledStraightThroughGumbelSoftmax",
    "ExpRelaxedOneHotCategorical",
    "GeneralizedGumbelSoftmax",
    "OneHotCategorical",
    "RelaxedOneHotCategorical",
    "RelaxedOneHotCategoricalStraightThrough",
]


def exp_concrete_log_density(y: ArrayLike, logits: ArrayLike, temperature: ArrayLike) -> jax.Array:
    r"""ExpConcrete log density of Maddison et al. (2017) at ``y`` (logs of a simplex point).

    .. math::
        \log p(y) = \log (K-1)! + (K-1)\log\tau + \sum_k (\ell_k - \tau y_k)
                    - K \operatorname{logsumexp}_k(\ell_k - \tau y_k).

    It is invariant to shifts of the logits ``\ell``; ``temperature`` has the batch shape.
    """
    num_categories = jnp.shape(logits)[-1]
    scores = logits - temperature[..., None] * y
    return (
        gammaln(num_categories)
        + (num_categories - 1) * jnp.log(temperature)
        + jnp.sum(scores, axis=-1)
        - num_categories * logsumexp(scores, axis=-1)
    )


@jax.custom_jvp
def one_hot_log_pmf(value: jax.Array, log_probs: jax.Array) -> jax.Array:
    r""":math:`\sum_k x_k \log p_k` over the last axis, with :math:`0 \cdot \log 0 = 0`.

    A masked category (``log_probs = -inf``) that the value does not take adds 0, one that it
    takes gives ``-inf``, as NumPyro's ``Categorical``. Computed with the logs floored at the
    dtype's lowest finite number and the derivatives :math:`\log p_k` (floored) and
    :math:`x_k` as a custom JVP: a ``where`` on every element costs the straight-through
    training step about 6% (forward and backward), the floor nothing.
    """
    low = jnp.finfo(log_probs.dtype).min
    out = jnp.sum(value * jnp.maximum(log_probs, low), axis=-1)
    return jnp.where(out <= low, -jnp.inf, out)


@one_hot_log_pmf.defjvp
def _one_hot_log_pmf_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    (value, log_probs), (d_value, d_log_probs) = primals, tangents
    floored = jnp.maximum(log_probs, jnp.finfo(log_probs.dtype).min)
    tangent = jnp.sum(d_value * floored + value * d_log_probs, axis=-1)
    return one_hot_log_pmf(value, log_probs), tangent


def gumbel_log_softmax(
    key: jax.Array, logits: jax.Array, temperature: jax.Array, sample_shape: tuple[int, ...]
) -> jax.Array:
    """``log_softmax((logits + g) / temperature)`` with ``g`` i.i.d. Gumbel per element."""
    shape = sample_shape + jnp.shape(logits)
    g = random.gumbel(key, shape, dtype=jnp.result_type(logits))
    return jax.nn.log_softmax((logits + g) / temperature[..., None], axis=-1)


class _OneHotLogits(Distribution):
    """Shared set-up: logits over the last axis, ``probs`` lazily, temperatures in the batch."""

    pytree_data_fields = ("logits",)
    _temperature_names: tuple[str, ...] = ()

    def _setup(
        self,
        probs: ArrayLike | None,
        logits: ArrayLike | None,
        validate_args: bool | None,
        *,
        vectors: dict[str, jax.Array] | None = None,
        scalar_event: bool = False,
        **temperatures: ArrayLike,
    ) -> None:
        """Broadcast logits, temperatures and extra per-category ``vectors`` to one batch shape."""
        name = type(self).__name__
        logits, probs = select_logits(name, probs, logits)
        vectors = vectors or {}
        validate = validation_on(self, validate_args)
        temps = {k: check_positive(name, k, v, validate=validate) for k, v in temperatures.items()}
        batch_shape = broadcast_batch(
            name,
            **{k: jnp.shape(v) for k, v in temps.items()},
            **{k: jnp.shape(v)[:-1] for k, v in vectors.items()},
            logits=jnp.shape(logits)[:-1],
        )
        categories = jnp.shape(logits)[-1:]
        self.logits = jnp.broadcast_to(logits, batch_shape + categories)
        if probs is not None:
            self.probs = jnp.broadcast_to(probs, batch_shape + categories)
        for k, v in vectors.items():
            setattr(self, k, jnp.broadcast_to(v, batch_shape + categories))
        for k, v in temps.items():
            setattr(self, k, jnp.broadcast_to(v, batch_shape))
        event_shape = () if scalar_event else categories
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @lazy_property
    def probs(self) -> jax.Array:
        return jax.nn.softmax(self.logits, axis=-1)

    def _discrete_log_pmf(self, value: ArrayLike, logits: ArrayLike) -> jax.Array:
        logp = jax.nn.log_softmax(logits, axis=-1)
        dtype = jnp.result_type(value, logp, float)
        return one_hot_log_pmf(jnp.asarray(value, dtype), logp.astype(dtype))


class OneHotCategorical(_OneHotLogits):
    r"""Categorical distribution over one-hot vectors of length ``K``.

    The discrete law that the relaxations in this module approximate; NumPyro's ``Categorical``
    returns integer indices instead. ``log p(x) = \sum_k x_k \log \pi_k``.

    :param probs: event probabilities, shape ``batch_shape + (K,)``.
    :param logits: unnormalised log probabilities, shape ``batch_shape + (K,)``.
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = one_hot
    has_enumerate_support = True

    def __init__(
        self,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._setup(probs, logits, validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        idx = random.categorical(key, self.logits, shape=sample_shape + self.batch_shape)
        return jax.nn.one_hot(idx, self.event_shape[-1], dtype=self.logits.dtype)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        return self._discrete_log_pmf(value, self.logits)

    def enumerate_support(self, expand: bool = True) -> jax.Array:
        k = self.event_shape[-1]
        values = jnp.eye(k, dtype=self.logits.dtype).reshape(
            (k,) + (1,) * len(self.batch_shape) + (k,)
        )
        if expand:
            values = jnp.broadcast_to(values, (k,) + self.batch_shape + (k,))
        return values

    @property
    def mean(self) -> jax.Array:
        return self.probs

    @property
    def variance(self) -> jax.Array:
        return self.probs * (1 - self.probs)

    @property
    def mode(self) -> jax.Array:
        return one_hot_argmax(self.logits)

    def entropy(self) -> jax.Array:
        return categorical_entropy(self.logits)


class ExpRelaxedOneHotCategorical(_OneHotLogits):
    r"""ExpConcrete: the log of a Gumbel-softmax / Concrete sample (Maddison et al., 2017).

    .. math::
        y = \operatorname{log\_softmax}\big((\ell + g)/\tau\big), \qquad g_k \sim \mathrm{Gumbel}(0, 1),

    .. math::
        \log p(y) = \log (K-1)! + (K-1)\log\tau + \sum_k (\ell_k - \tau y_k)
                    - K \operatorname{logsumexp}_k(\ell_k - \tau y_k).

    This is the ExpConcrete density of the paper, the one TFP and PyTorch implement. It is a
    density with respect to the measure :math:`dy_1\cdots dy_{K-1}/x_K` on the log-simplex
    (:math:`x = e^y`), so it differs from the Lebesgue density of :math:`(y_1..y_{K-1})` by
    :math:`-y_K`; the base measure cancels in a KL between two ExpConcretes, which is why the
    paper recommends this form for ELBO terms at low temperature. Samples never underflow:
    they stay finite logs even where the simplex point rounds to a vertex.

    :param temperature: positive temperature :math:`\tau`, broadcastable to the batch shape.
    :param probs: category probabilities (exactly one of ``probs``/``logits``).
    :param logits: unnormalised log probabilities :math:`\ell`.

    **References:**

    1. *The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables*,
       C. J. Maddison, A. Mnih, Y. W. Teh (ICLR 2017), appendix B.
    """

    arg_constraints = {
        "temperature": constraints.positive,
        "probs": constraints.simplex,
        "logits": constraints.real_vector,
    }
    pytree_data_fields = ("temperature", "logits")
    reparametrized_params = ["temperature", "probs", "logits"]
    support = log_simplex

    def __init__(
        self,
        temperature: ArrayLike,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._setup(probs, logits, validate_args, temperature=temperature)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return gumbel_log_softmax(key, self.logits, self.temperature, sample_shape)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        return exp_concrete_log_density(value, self.logits, self.temperature)

    @property
    def mean(self) -> jax.Array:
        raise no_closed_form(self, "mean", "the Concrete law has no closed form for it")

    @property
    def variance(self) -> jax.Array:
        raise no_closed_form(self, "variance", "the Concrete law has no closed form for it")

    def entropy(self) -> jax.Array:
        raise no_closed_form(self, "entropy", "the Concrete law has no closed form for it")


class RelaxedOneHotCategorical(ExpRelaxedOneHotCategorical):
    r"""Gumbel-softmax / Concrete distribution on the simplex (Jang et al.; Maddison et al., 2017).

    .. math::
        x = \operatorname{softmax}\big((\ell + g)/\tau\big), \qquad g_k \sim \mathrm{Gumbel}(0, 1),

    .. math::
        p(x) = (K-1)!\,\tau^{K-1} \prod_k \frac{\pi_k x_k^{-\tau-1}}{\sum_j \pi_j x_j^{-\tau}},

    a density with respect to Lebesgue measure on :math:`(x_1, \dots, x_{K-1})`. Computed as the
    ExpConcrete density of :math:`y = \log x` minus :math:`\sum_k y_k`. The sample is computed
    in log space, :math:`x = \exp(\max(y, \log t))` with :math:`t` the dtype's ``tiny``
    (``1.2e-38`` in float32), and returned with the floored ``y`` as an intermediate: at low
    temperature no coordinate rounds to 0, so ``log_prob`` from the value alone (how NumPyro's
    ``replay`` scores a model's prior at a guide's sample, and how a masked site is scored) is
    finite, with finite gradients, and equal to ``log_prob`` from the intermediate. ``log_prob``
    of a value with exact zeros (a vertex) floors them at ``tiny`` too.

    **References:**

    1. *Categorical Reparameterization with Gumbel-Softmax*, E. Jang, S. Gu, B. Poole (ICLR 2017).
    2. *The Concrete Distribution*, C. J. Maddison, A. Mnih, Y. W. Teh (ICLR 2017).
    """

    support = constraints.simplex

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        x, y = simplex_from_log(
            gumbel_log_softmax(key, self.logits, self.temperature, sample_shape)
        )
        return x, [y]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self.sample_with_intermediates(key, sample_shape)[0]

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        y = intermediates[0] if intermediates else safe_log(value)
        return exp_concrete_log_density(y, self.logits, self.temperature) - jnp.sum(y, axis=-1)


class RelaxedOneHotCategoricalStraightThrough(RelaxedOneHotCategorical):
    r"""Straight-through Gumbel-softmax: one-hot forward, Gumbel-softmax gradient backward.

    .. math::
        z = \mathrm{onehot}(\arg\max_k (\ell_k + g_k)) + \big(x - \mathrm{sg}(x)\big),
        \quad x = \operatorname{softmax}((\ell + g)/\tau).

    The forward value is an exact one-hot sample of :math:`\mathrm{Cat}(\pi)` (the argmax of the
    perturbed logits does not depend on :math:`\tau`); gradients flow through the relaxed
    sample :math:`x`, a biased estimator. ``log_prob`` is the categorical pmf
    :math:`\sum_k z_k \log\pi_k` of the discrete law the forward value follows, so the KL to a
    :class:`OneHotCategorical` prior is exact. The support is declared as the simplex, not as a
    discrete set: one-hot vectors lie on it, and SVI would refuse a discrete guide site.

    **References:**

    1. *Categorical Reparameterization with Gumbel-Softmax*, E. Jang, S. Gu, B. Poole (ICLR 2017).
    """

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        y = gumbel_log_softmax(key, self.logits, self.temperature, sample_shape)
        return straight_through(one_hot_argmax(y), jnp.exp(y)), []

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        return self._discrete_log_pmf(value, self.logits)

    @property
    def mean(self) -> jax.Array:
        return self.probs

    @property
    def variance(self) -> jax.Array:
        return self.probs * (1 - self.probs)

    def entropy(self) -> jax.Array:
        """Entropy of the categorical law of the forward value (``log_prob`` is its pmf)."""
        return categorical_entropy(self.logits)


class DecoupledStraightThroughGumbelSoftmax(_OneHotLogits):
    r"""Straight-through Gumbel-softmax with decoupled forward and backward temperatures.

    With one Gumbel vector :math:`g` per sample,

    .. math::
        h = \mathrm{onehot}\big(\arg\max_k (\ell_k/\tau_f + g_k)\big), \qquad
        s = \operatorname{softmax}\big((\ell + \tau_f g)/\tau_b\big), \qquad
        z = h + (s - \mathrm{sg}(s)).

    The forward value is an exact sample of :math:`\mathrm{Cat}(\operatorname{softmax}(\ell/\tau_f))`:
    :math:`\tau_f` sets how much the forward pass explores. The backward surrogate :math:`s` is a
    softmax at temperature :math:`\tau_b` of the same perturbed scores (its argmax is always
    :math:`h`), so :math:`\tau_b` sets how the gradient spreads over categories. With
    :math:`\tau_f = 1` this is the straight-through Gumbel-softmax at temperature :math:`\tau_b`.
    ``log_prob`` is the pmf of the forward law, :math:`\sum_k z_k \log\operatorname{softmax}(\ell/\tau_f)_k`.

    **References:**

    1. *Improving Discrete Optimisation Via Decoupled Straight-Through Gumbel-Softmax*,
       R. Shah, M. Yan, M. C. Mozer, D. Liu (arXiv:2410.13331).
    """

    arg_constraints = {
        "temperature_forward": constraints.positive,
        "temperature_backward": constraints.positive,
        "probs": constraints.simplex,
        "logits": constraints.real_vector,
    }
    pytree_data_fields = ("temperature_forward", "temperature_backward", "logits")
    reparametrized_params = ["temperature_forward", "temperature_backward", "probs", "logits"]
    support = constraints.simplex

    def __init__(
        self,
        temperature_forward: ArrayLike,
        temperature_backward: ArrayLike,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._setup(
            probs,
            logits,
            validate_args,
            temperature_forward=temperature_forward,
            temperature_backward=temperature_backward,
        )

    @property
    def forward_logits(self) -> jax.Array:
        """Logits of the forward law, ``logits / temperature_forward``."""
        return self.logits / self.temperature_forward[..., None]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        shape = sample_shape + self.batch_shape + self.event_shape
        g = random.gumbel(key, shape, dtype=self.logits.dtype)
        scores = self.forward_logits + g
        ratio = (self.temperature_forward / self.temperature_backward)[..., None]
        soft = jax.nn.softmax(ratio * scores, axis=-1)
        return straight_through(one_hot_argmax(scores), soft)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        return self._discrete_log_pmf(value, self.forward_logits)

    @property
    def mean(self) -> jax.Array:
        return jax.nn.softmax(self.forward_logits, axis=-1)

    @property
    def variance(self) -> jax.Array:
        p = self.mean
        return p * (1 - p)

    def entropy(self) -> jax.Array:
        """Entropy of the categorical law of the forward value (``log_prob`` is its pmf)."""
        return categorical_entropy(self.forward_logits)


@vmap_over.register
def _(dist: OneHotCategorical, probs=None, logits=None):
    return vmap_over_logits(dist, probs=probs, logits=logits)


@vmap_over.register
def _(dist: ExpRelaxedOneHotCategorical, temperature=None, probs=None, logits=None):
    return vmap_over_logits(dist, probs=probs, logits=logits, temperature=temperature)


@vmap_over.register
def _(
    dist: DecoupledStraightThroughGumbelSoftmax,
    temperature_forward=None,
    temperature_backward=None,
    probs=None,
    logits=None,
):
    return vmap_over_logits(
        dist,
        probs=probs,
        logits=logits,
        temperature_forward=temperature_forward,
        temperature_backward=temperature_backward,
    )


# re-exported (old import path): the class has its own module, which builds on _OneHotLogits
from numpyro_relax.distributions.generalized import GeneralizedGumbelSoftmax  # noqa: E402
