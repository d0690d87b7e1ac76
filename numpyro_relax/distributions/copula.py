r"""Correlated relaxed Bernoulli gates through a Gaussian copula (Lee, Imrie et al., 2022).

:class:`CorrelatedRelaxedBernoulli` draws gates :math:`m \in (0, 1)^D`; in float32 a gate
rounds to exactly 0 or 1 once its logit passes about :math:`\pm 17`, and its density can then
only be evaluated from the sampler's intermediates. :class:`LogitCorrelatedRelaxedBernoulli`
gives the same law in the coordinates :math:`y = \mathrm{logit}\, m`, where the density is exact
at *every* value: a model and a guide written in these coordinates (as Maddison et al. recommend
for the binary Concrete, e.g. against a :class:`~numpyro_relax.LogitRelaxedBernoulli` prior with
``Trace_ELBO``) have an exact :math:`\log q(y) - \log p(y)` even where the gates saturate.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import random
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import _default_vmap_over, vmap_over
from numpyro.distributions.continuous import RelaxedBernoulliLogits
from numpyro.distributions.distribution import Distribution
from numpyro.distributions.util import lazy_property, validate_sample

from numpyro_relax.distributions.bits import LogitRelaxedBernoulli
from numpyro_relax.distributions.constraints import correlation_matrix
from numpyro_relax.distributions.util import (
    as_float_array,
    broadcast_batch,
    check_positive,
    clamp_probs,
    jit_ndtri,
    log_ndtr_pm,
    log_sigmoid_both,
    logit,
    no_closed_form,
    probs_to_logits,
    tril_half_log_det,
    tril_mahalanobis,
    tril_matvec,
    validation_on,
)

__all__ = ["CorrelatedRelaxedBernoulli", "LogitCorrelatedRelaxedBernoulli"]


@jax.jit
def _copula_normals(y: jax.Array, logits: jax.Array, temperature: jax.Array) -> jax.Array:
    """Inverse of the sampler: ``v = Phi^-1(u)`` with ``logit u = tau * y - logit pi``.

    Computed in the lower tail, ``v = -sign(w) Phi^-1(sigmoid(-|w|))``, where it is accurate.
    """
    w = temperature[..., None] * y - logits
    tail = jit_ndtri(clamp_probs(jax.nn.sigmoid(-jnp.abs(w))))
    return jnp.where(w < 0, tail, -tail)


def _copula_log_density(
    v: jax.Array,
    y: jax.Array,
    log_u: jax.Array,
    log_1mu: jax.Array,
    correlation: jax.Array,
    temperature: jax.Array,
) -> jax.Array:
    """Gaussian copula log density at ``v`` plus the per-gate log Jacobians (gate logits ``y``)."""
    scale_tril = jnp.linalg.cholesky(correlation)
    half_log_det = tril_half_log_det(scale_tril)
    # the factor is not broadcast to the sample: draws share one solve per distinct factor
    copula = -0.5 * (tril_mahalanobis(scale_tril, v) - jnp.sum(v**2, -1)) - half_log_det
    jac = jnp.log(temperature[..., None]) + log_u + log_1mu - log_sigmoid_both(y)
    return copula + jnp.sum(jac, axis=-1)


@partial(jax.jit, static_argnames="shape")
def _copula_sample(
    key: jax.Array,
    probs: jax.Array,
    correlation: jax.Array,
    temperature: jax.Array,
    shape: tuple[int, ...],
) -> tuple[jax.Array, jax.Array]:
    """Gates and the Gaussian vector behind them, in one compiled call.

    The gates are clamped into ``(tiny, 1 - eps)`` (NumPyro's ``RelaxedBernoulli`` convention):
    at low temperature the sigmoid rounds to exactly 0 or 1, where a binary Concrete density
    scored from the value alone (a ``RelaxedBernoulli`` prior under ``replay``) is NaN.
    """
    eps = random.normal(key, shape, dtype=probs.dtype)
    v = tril_matvec(jnp.linalg.cholesky(correlation), eps)
    log_u, log_1mu = log_ndtr_pm(v)
    logits = probs_to_logits(probs, is_binary=True)
    return clamp_probs(jax.nn.sigmoid((logits + log_u - log_1mu) / temperature[..., None])), v


@jax.jit
def _copula_log_prob(
    value: jax.Array,
    v: jax.Array | None,
    probs: jax.Array,
    correlation: jax.Array,
    temperature: jax.Array,
) -> jax.Array:
    """Log density at ``value``, from the Gaussian vector ``v`` when the sampler gave it."""
    logits = probs_to_logits(probs, is_binary=True)
    if v is None:
        y = logit(value)
        v = _copula_normals(y, logits, temperature)
        log_u, log_1mu = log_ndtr_pm(v)
    else:
        log_u, log_1mu = log_ndtr_pm(v)
        y = (logits + log_u - log_1mu) / temperature[..., None]
    return _copula_log_density(v, y, log_u, log_1mu, correlation, temperature)


class CorrelatedRelaxedBernoulli(Distribution):
    r"""Correlated relaxed Bernoulli gates through a Gaussian copula (Lee, Imrie et al., 2022).

    For a correlation matrix :math:`R` (``D x D``), selection probabilities :math:`\pi` and
    temperature :math:`\tau`,

    .. math::
        v \sim \mathcal{N}(0, R), \quad u_k = \Phi(v_k), \quad
        m_k = \sigma\!\left(\frac{\mathrm{logit}\,\pi_k + \log u_k - \log(1 - u_k)}{\tau}\right),

    with :math:`\log u_k - \log(1-u_k) = \log\Phi(v_k) - \log\Phi(-v_k)` computed in log space.
    Each :math:`m_k` is marginally a binary Concrete (``RelaxedBernoulli``), and the gates are
    coupled by :math:`R`. Inverting the sampler (change of variables) gives the exact density

    .. math::
        \log p(m) = -\tfrac12 v^\top (R^{-1} - I) v - \tfrac12\log\det R
          + \sum_k \big[\log\tau + \log u_k + \log(1-u_k) - \log m_k - \log(1 - m_k)\big],

    the Gaussian copula density times the per-coordinate binary Concrete densities, with
    :math:`v_k = \Phi^{-1}(u_k)`, :math:`\mathrm{logit}\,u_k = \tau\,\mathrm{logit}\,m_k -
    \mathrm{logit}\,\pi_k`. Samples return :math:`v` as an intermediate, so ``log_prob`` at a
    sample drawn inside a NumPyro trace stays exact where :math:`m` rounds to 0 or 1.

    :param probs: selection probabilities :math:`\pi`, shape ``batch_shape + (D,)``.
    :param correlation: correlation matrix :math:`R`, shape ``batch_shape + (D, D)``
        (symmetric, unit diagonal, positive definite).
    :param temperature: positive temperature :math:`\tau`, broadcastable to ``batch_shape``.

    **References:**

    1. *Self-Supervision Enhanced Feature Selection with Correlated Gates*, C. Lee, F. Imrie,
       M. van der Schaar (ICLR 2022).
    """

    arg_constraints = {
        "probs": constraints.independent(constraints.unit_interval, 1),
        "correlation": correlation_matrix,
        "temperature": constraints.positive,
    }
    pytree_data_fields = ("probs", "correlation", "temperature")
    reparametrized_params = ["probs", "correlation", "temperature"]
    support = constraints.independent(constraints.unit_interval, 1)

    def __init__(
        self,
        probs: ArrayLike,
        correlation: ArrayLike,
        temperature: ArrayLike,
        *,
        validate_args: bool | None = None,
    ) -> None:
        name = type(self).__name__
        probs = as_float_array("probs", probs)
        correlation = as_float_array("correlation", correlation)
        validate = validation_on(self, validate_args)
        temperature = check_positive(name, "temperature", temperature, validate=validate)
        if probs.ndim < 1 or probs.shape[-1] == 0:
            raise ValueError(
                f"{name}: `probs` must have a last axis of at least one gate, got shape "
                f"{probs.shape}."
            )
        dim = probs.shape[-1]
        if correlation.ndim < 2 or correlation.shape[-2:] != (dim, dim):
            raise ValueError(
                f"{name}: `correlation` must have shape batch_shape + ({dim}, {dim}) to match "
                f"`probs` of shape {probs.shape}, got {correlation.shape}."
            )
        # with validation on, the `correlation_matrix` constraint rejects a matrix that is not a
        # correlation matrix (naming `correlation`); with it off, it constructs, as in NumPyro
        batch_shape = broadcast_batch(
            name,
            probs=probs.shape[:-1],
            correlation=correlation.shape[:-2],
            temperature=jnp.shape(temperature),
        )
        self.probs = jnp.broadcast_to(probs, batch_shape + (dim,))
        # not broadcast to the batch: one shared D x D matrix means one Cholesky factorisation
        # and one triangular solve with every sample as a right-hand side
        self.correlation = correlation
        self.temperature = jnp.broadcast_to(temperature, batch_shape)
        super().__init__(batch_shape, (dim,), validate_args=validate_args)

    @lazy_property
    def logits(self) -> jax.Array:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def scale_tril(self) -> jax.Array:
        """Cholesky factor of ``correlation``."""
        return jnp.linalg.cholesky(self.correlation)

    @property
    def marginals(self) -> RelaxedBernoulliLogits:
        """The per-gate laws: binary Concretes, batch shape ``batch_shape + (D,)``."""
        return RelaxedBernoulliLogits(self.temperature[..., None], self.logits)

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        x, v = _copula_sample(key, self.probs, self.correlation, self.temperature, shape)
        return x, [v]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self.sample_with_intermediates(key, sample_shape)[0]

    def normals(self, value: ArrayLike) -> jax.Array:
        r"""The Gaussian vector :math:`v` behind gates ``value`` (the inverse of the sampler)."""
        return _copula_normals(logit(value), self.logits, self.temperature)

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        v = intermediates[0] if intermediates else None
        return _copula_log_prob(value, v, self.probs, self.correlation, self.temperature)

    @property
    def mean(self) -> jax.Array:
        raise no_closed_form(self, "mean")

    @property
    def variance(self) -> jax.Array:
        raise no_closed_form(self, "variance")

    def entropy(self) -> jax.Array:
        raise no_closed_form(self, "entropy", "the Gaussian-copula law has no closed form for it")


class LogitCorrelatedRelaxedBernoulli(CorrelatedRelaxedBernoulli):
    r"""The logits :math:`y = \mathrm{logit}\, m` of :class:`~numpyro_relax.CorrelatedRelaxedBernoulli`
    gates (Gaussian copula, Lee, Imrie et al. 2022).

    With correlation :math:`R`, probabilities :math:`\pi` and temperature :math:`\tau`,

    .. math::
        v \sim \mathcal{N}(0, R), \qquad
        y_k = \frac{\mathrm{logit}\,\pi_k + \log\Phi(v_k) - \log\Phi(-v_k)}{\tau},

    so each :math:`y_k` is marginally a :class:`~numpyro_relax.LogitRelaxedBernoulli`
    (:attr:`marginals`) and :math:`\sigma(y)` is the library's correlated gate. The density is

    .. math::
        \log p(y) = -\tfrac12 v^\top (R^{-1} - I) v - \tfrac12\log\det R
          + \sum_k \big[\log\tau + \log\Phi(v_k) + \log\Phi(-v_k)\big],

    with :math:`v_k = -\mathrm{sign}(w_k)\,\Phi^{-1}(\sigma(-|w_k|))`,
    :math:`w_k = \tau y_k - \mathrm{logit}\,\pi_k`, computed in the lower tail: exact for any
    value, with or without the sampler's intermediates. Same parameters and checks as
    :class:`~numpyro_relax.CorrelatedRelaxedBernoulli`; the support is :math:`\mathbb{R}^D`.

    :param probs: selection probabilities :math:`\pi`, shape ``batch_shape + (D,)``.
    :param correlation: correlation matrix :math:`R`, shape ``batch_shape + (D, D)``.
    :param temperature: positive temperature :math:`\tau`, broadcastable to ``batch_shape``.

    **References:**

    1. *Self-Supervision Enhanced Feature Selection with Correlated Gates*, C. Lee, F. Imrie,
       M. van der Schaar (ICLR 2022).
    2. *The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables*,
       C. J. Maddison, A. Mnih, Y. W. Teh (ICLR 2017).
    """

    support = constraints.real_vector

    @property
    def marginals(self) -> LogitRelaxedBernoulli:
        """The per-gate laws: binary Concretes in logit space, batch shape ``batch_shape + (D,)``."""
        return LogitRelaxedBernoulli(self.temperature[..., None], logits=self.logits)

    def _gate_logits(self, v: jax.Array) -> jax.Array:
        log_u, log_1mu = log_ndtr_pm(v)
        return (self.logits + log_u - log_1mu) / self.temperature[..., None]

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        _, (v,) = super().sample_with_intermediates(key, sample_shape)
        return self._gate_logits(v), [v]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self.sample_with_intermediates(key, sample_shape)[0]

    def normals(self, value: ArrayLike) -> jax.Array:
        r"""The Gaussian vector :math:`v` behind gate logits ``value`` (the inverse of the sampler)."""
        return _copula_normals(jnp.asarray(value), self.logits, self.temperature)

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        v = intermediates[0] if intermediates else self.normals(value)
        log_u, log_1mu = log_ndtr_pm(v)
        scale_tril = self.scale_tril
        half_log_det = tril_half_log_det(scale_tril)
        copula = -0.5 * (tril_mahalanobis(scale_tril, v) - jnp.sum(v**2, -1)) - half_log_det
        jac = jnp.log(self.temperature)[..., None] + log_u + log_1mu
        return copula + jnp.sum(jac, axis=-1)


@vmap_over.register
def _(dist: CorrelatedRelaxedBernoulli, probs=None, correlation=None, temperature=None):
    return _default_vmap_over(dist, probs=probs, correlation=correlation, temperature=temperature)
