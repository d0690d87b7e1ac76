r"""Exact KL divergences between the Gaussian-based simplex laws (registered on import).

Every distribution of :mod:`numpyro_relax.distributions.simplex` is a logistic-normal law: its
additive log-ratio coordinates :math:`\operatorname{alr}(x) = \log(x_{1:K-1}/x_K)` are Gaussian,
and :math:`\operatorname{alr}` is a bijection of the open simplex onto :math:`\mathbb{R}^{K-1}`.
A KL divergence is invariant under a common bijection, so the KL between any two of them is the
KL between their ALR Gaussians, in closed form:

* ``InvertibleGaussian`` vs ``InvertibleGaussian``: :math:`\operatorname{alr}(x) \sim
  N(\mu/\tau - \log\delta, \operatorname{diag}(\sigma/\tau)^2)`, so the KL is a sum of
  univariate Normal KLs. When the temperatures and deltas agree it equals the KL between the
  underlying Gaussians :math:`N(\mu_p, \sigma_p^2)` and :math:`N(\mu_q, \sigma_q^2)` (the same
  affine map is applied to both); when they differ, the two laws are pushforwards through
  different softmax++ maps, yet both remain logistic-normal and the formula above stays exact
  (the KL of ``(loc, scale)`` alone would be wrong there, so it is never used on its own).
* ``LogisticNormal`` vs ``LogisticNormal``: the multivariate Normal KL in ALR coordinates,
  through the Cholesky factors.
* ``LogisticNormalSoftmax`` vs ``LogisticNormalSoftmax``: the KL of the induced ALR Gaussians,
  whose covariances are diagonal plus rank one, in :math:`O(K)`. It is **not** the KL between the
  ``K``-dimensional diagonal Normals: softmax is not injective, and that KL also counts the
  direction :math:`\mathbf{1}` that softmax discards (it is an upper bound, by the data
  processing inequality).
* mixed pairs of the three classes: the dense multivariate Normal KL of the ALR Gaussians.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp
from numpyro.distributions.kl import kl_divergence

from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
)
from numpyro_relax.distributions.util import tril_half_log_det, tril_mahalanobis

__all__ = ["alr_gaussian_kl", "diag_plus_rank_one_kl"]


def _check_event(p, q) -> None:
    if p.event_shape != q.event_shape:
        raise ValueError(
            f"kl_divergence({type(p).__name__}, {type(q).__name__}): event shapes differ, "
            f"{p.event_shape} vs {q.event_shape}."
        )


def _normal_kl(loc_p, scale_p, loc_q, scale_q) -> jax.Array:
    ratio = scale_p / scale_q
    return 0.5 * (ratio**2 + ((loc_p - loc_q) / scale_q) ** 2 - 1.0) - jnp.log(ratio)


def tril_gaussian_kl(loc_p, tril_p, loc_q, tril_q) -> jax.Array:
    r""":math:`\mathrm{KL}(N(\mu_p, L_pL_p^\top)\,\|\,N(\mu_q, L_qL_q^\top))` over the last axis."""
    n = jnp.shape(loc_p)[-1]
    # the trace and log-determinant terms involve the factors alone: they are computed on the
    # factors broadcast against each other, not against the batch of the locations (a factor
    # shared by a batch of locations is not copied per element)
    factor_batch = lax.broadcast_shapes(jnp.shape(tril_p)[:-2], jnp.shape(tril_q)[:-2])
    m = solve_triangular(
        jnp.broadcast_to(tril_q, factor_batch + (n, n)),
        jnp.broadcast_to(tril_p, factor_batch + (n, n)),
        lower=True,
    )
    mahalanobis = tril_mahalanobis(tril_q, jnp.asarray(loc_q) - loc_p)

    return (
        0.5 * (jnp.sum(m**2, axis=(-2, -1)) + mahalanobis - n)
        + tril_half_log_det(tril_q)
        - tril_half_log_det(tril_p)
    )


def alr_gaussian_kl(p, q) -> jax.Array:
    """KL between two simplex laws from their dense ALR Gaussians (any pair of the family)."""
    _check_event(p, q)
    return tril_gaussian_kl(
        p.alr_loc,
        jnp.linalg.cholesky(p.alr_covariance_matrix),
        q.alr_loc,
        jnp.linalg.cholesky(q.alr_covariance_matrix),
    )


def _weighted_sum_of_squares(w: jax.Array, v: jax.Array, big_v: jax.Array) -> jax.Array:
    """``sum_k v_k (w_k - w_bar)^2`` with ``w_bar`` the ``v``-weighted mean."""
    w_bar = jnp.sum(v * w, axis=-1, keepdims=True) / big_v[..., None]
    return jnp.sum(v * (w - w_bar) ** 2, axis=-1)


def diag_plus_rank_one_kl(loc_p, scale_p, loc_q, scale_q) -> jax.Array:
    r"""KL between the laws of :math:`\operatorname{softmax}(z)`, :math:`z \sim N(\mu, \operatorname{diag}(s^2))`.

    Both ALR covariances have the form :math:`\Sigma = A S A^\top` with
    :math:`S = \operatorname{diag}(s^2)` and :math:`A = [I, -\mathbf{1}]`. With
    :math:`v_k = s_{q,k}^{-2}`, :math:`V = \sum_k v_k`, the pulled-back precision is
    :math:`A^\top\Sigma_q^{-1}A = \operatorname{diag}(v) - v v^\top / V` (Sherman--Morrison), so

    .. math::
        \operatorname{tr}(\Sigma_q^{-1}\Sigma_p) = \sum_k v_k s_{p,k}^2
            - \frac{\sum_k v_k^2 s_{p,k}^2}{V}, \qquad
        \delta^\top\Sigma_q^{-1}\delta = \sum_k v_k (d_k - \bar d)^2,\ d = \mu_q - \mu_p,

    and :math:`\log\det\Sigma = \sum_k \log s_k^2 + \log\sum_k s_k^{-2}` (determinant lemma):

    .. math::
        \mathrm{KL} = \tfrac12\big[\operatorname{tr}(\Sigma_q^{-1}\Sigma_p)
            + \delta^\top\Sigma_q^{-1}\delta - (K-1) + \log\det\Sigma_q - \log\det\Sigma_p\big].
    """
    log_vq = -2.0 * jnp.log(scale_q)
    log_vp = -2.0 * jnp.log(scale_p)
    log_big_vq = logsumexp(log_vq, axis=-1)
    log_big_vp = logsumexp(log_vp, axis=-1)
    vq = jnp.exp(log_vq)
    big_vq = jnp.exp(log_big_vq)
    ratio = jnp.exp(log_vq - log_vp)  # s_p^2 / s_q^2
    # tr = sum_k r_k - sum_k v_k r_k / V: the weights v_k / V sum to one, so tr = sum_k r_k (1 - u_k)
    u = jnp.exp(log_vq - log_big_vq[..., None])
    trace = jnp.sum(ratio * (1.0 - u), axis=-1)
    mahalanobis = _weighted_sum_of_squares(loc_q - loc_p, vq, big_vq)
    n = jnp.shape(ratio)[-1] - 1
    log_det_q = -jnp.sum(log_vq, axis=-1) + log_big_vq
    log_det_p = -jnp.sum(log_vp, axis=-1) + log_big_vp
    return 0.5 * (trace + mahalanobis - n + log_det_q - log_det_p)


@kl_divergence.register(InvertibleGaussian, InvertibleGaussian)
def _kl_igr_igr(p, q):
    _check_event(p, q)
    return jnp.sum(_normal_kl(p.alr_loc, p.alr_scale, q.alr_loc, q.alr_scale), axis=-1)


@kl_divergence.register(LogisticNormal, LogisticNormal)
def _kl_ln_ln(p, q):
    _check_event(p, q)
    return tril_gaussian_kl(p.loc, p.scale_tril, q.loc, q.scale_tril)


@kl_divergence.register(LogisticNormalSoftmax, LogisticNormalSoftmax)
def _kl_lns_lns(p, q):
    _check_event(p, q)
    return diag_plus_rank_one_kl(p.loc, p.scale, q.loc, q.scale)


_FAMILY = (InvertibleGaussian, LogisticNormal, LogisticNormalSoftmax)
for _p in _FAMILY:
    for _q in _FAMILY:
        if _p is not _q:
            kl_divergence.register(_p, _q)(alr_gaussian_kl)
del _p, _q
