r"""Correlated relaxed Bernoulli gates in logit space.

:class:`~numpyro_relax.CorrelatedRelaxedBernoulli` draws gates :math:`m \in (0, 1)^D`; in
float32 a gate rounds to exactly 0 or 1 once its logit passes about :math:`\pm 17`, and its
density can then only be evaluated from the sampler's intermediates. This module gives the same
law in the coordinates :math:`y = \mathrm{logit}\, m`, where the density is exact at *every*
value: a model and a guide written in these coordinates (as Maddison et al. recommend for the
binary Concrete, e.g. against a :class:`~numpyro_relax.LogitRelaxedBernoulli` prior with
``Trace_ELBO``) have an exact :math:`\log q(y) - \log p(y)` even where the gates saturate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.util import validate_sample

from numpyro_relax.distributions.bernoulli import (
    CorrelatedRelaxedBernoulli,
    LogitRelaxedBernoulli,
    _copula_normals,
    _log_ndtr_pm,
)
from numpyro_relax.distributions.util import tril_mahalanobis

__all__ = ["LogitCorrelatedRelaxedBernoulli"]


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
        log_u, log_1mu = _log_ndtr_pm(v)
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
        log_u, log_1mu = _log_ndtr_pm(v)
        scale_tril = self.scale_tril
        half_log_det = jnp.sum(jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)), axis=-1)
        copula = -0.5 * (tril_mahalanobis(scale_tril, v) - jnp.sum(v**2, -1)) - half_log_det
        jac = jnp.log(self.temperature)[..., None] + log_u + log_1mu
        return copula + jnp.sum(jac, axis=-1)
