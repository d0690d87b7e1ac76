r"""The Laplace bridge between Dirichlet and logistic-normal laws (Hobbhahn, Kristiadi & Hennig).

MacKay (1998) writes a Dirichlet :math:`\mathrm{Dir}(\alpha)` in the softmax basis
:math:`x = \operatorname{softmax}(z)`: with the Jacobian, the density of :math:`z` (on the
sum-to-zero plane) is proportional to :math:`\prod_k x_k^{\alpha_k}`. Its Laplace approximation
at the mode :math:`x = \alpha / \sum_j \alpha_j` is the Gaussian

.. math::
    \mu_k = \log\alpha_k - \frac1K \sum_{j}\log\alpha_j, \qquad
    \Sigma_{kl} = \frac{\delta_{kl}}{\alpha_k} - \frac1K\Big(\frac1{\alpha_k} + \frac1{\alpha_l}\Big)
                  + \frac1{K^2}\sum_j \frac1{\alpha_j},

i.e. :math:`\Sigma = P\operatorname{diag}(1/\alpha)P` with :math:`P = I - \mathbf{1}\mathbf{1}^\top/K`,
the inverse of the Hessian :math:`\operatorname{diag}(\alpha) - \alpha\alpha^\top/\sum_j\alpha_j`
on the sum-to-zero plane; the diagonal is
:math:`\Sigma_{kk} = \frac1{\alpha_k}(1 - \frac2K) + \frac1{K^2}\sum_j \frac1{\alpha_j}`.
Solving the diagonal for :math:`\alpha` gives the map back,

.. math::
    \alpha_k = \frac{1}{\Sigma_{kk}}\Big(1 - \frac2K + \frac{e^{\mu_k}}{K^2}\sum_l e^{-\mu_l}\Big),

which is an exact inverse (:math:`e^{\mu_k}\sum_l e^{-\mu_l} = \alpha_k\sum_l 1/\alpha_l`).
:math:`\Sigma_{kk}` is a **variance**: relaxit passes it as the ``scale`` (a standard deviation)
of its logistic-normal and divides by the standard deviation on the way back; here the standard
deviation given to :class:`LogisticNormalSoftmax` is :math:`\sqrt{\Sigma_{kk}}`.

In ALR coordinates (:math:`A = [I, -\mathbf{1}]`, :math:`A\mathbf{1} = 0`) the Laplace covariance
is :math:`A\Sigma A^\top = \operatorname{diag}(1/\alpha_{1:K-1}) + \mathbf{1}\mathbf{1}^\top/\alpha_K`
and the mean :math:`\log\alpha_{1:K-1} - \log\alpha_K`: the full bridge is the law of
:math:`\operatorname{softmax}(z)`, :math:`z \sim N(\log\alpha, \operatorname{diag}(1/\alpha))`.
The paper's fast path (``diagonal=True``) instead keeps only the marginal variances
:math:`\Sigma_{kk}` of the sum-to-zero Gaussian and treats the logits as independent.

The map back is a moment-style approximation, not a predictive integral: the mean
:math:`\alpha/\sum_j\alpha_j` of the bridged Dirichlet is not
:math:`\mathbb{E}[\operatorname{softmax}(z)]` (with equal variances it does not depend on them at
all, and the :math:`1 - 2/K` term pulls it towards uniform). ``examples/laplace_bridge.py``
measures the consequence on a classifier.

**References:**

1. *Fast Predictive Uncertainty for Classification with Bayesian Deep Networks*, M. Hobbhahn,
   A. Kristiadi, P. Hennig (UAI 2022, arXiv:2003.01227).
2. *Choice of basis for Laplace approximation*, D. J. C. MacKay (Machine Learning 33, 1998).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jax.typing import ArrayLike
from numpyro.distributions import (
    Dirichlet,
    Distribution,
    Independent,
    MultivariateNormal,
    Normal,
)

from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
)
from numpyro_relax.distributions.util import all_concrete, as_float_array

__all__ = [
    "dirichlet_logit_variance",
    "dirichlet_to_gaussian",
    "gaussian_to_dirichlet",
    "laplace_bridge",
]


def _check_categories(name: str, arg: str, x: jax.Array) -> int:
    if x.ndim < 1 or x.shape[-1] < 2:
        raise ValueError(f"{name}: `{arg}` needs a last axis of K >= 2 categories, got {x.shape}.")
    return x.shape[-1]


def _check_positive(name: str, arg: str, x: jax.Array) -> None:
    """Reject a concrete ``x`` that is not positive and finite everywhere (it would give NaN or
    inf); traced values (under ``jit``) are not checked."""
    if all_concrete((x > 0) & jnp.isfinite(x)) is False:
        raise ValueError(f"{name}: `{arg}` must be positive and finite, got {x}.")


def dirichlet_to_gaussian(concentration: ArrayLike) -> tuple[jax.Array, jax.Array]:
    r"""Laplace approximation of :math:`\mathrm{Dir}(\alpha)` in the softmax basis.

    :param concentration: :math:`\alpha > 0`, shape ``batch_shape + (K,)``.
    :return: ``(loc, covariance)``: the sum-to-zero mean
        :math:`\mu_k = \log\alpha_k - \overline{\log\alpha}`, shape ``batch_shape + (K,)``, and the
        (rank ``K-1``) covariance :math:`P\operatorname{diag}(1/\alpha)P`, shape
        ``batch_shape + (K, K)``. Its diagonal is the per-logit variance of the paper.
    """
    alpha = as_float_array("concentration", concentration)
    k = _check_categories("dirichlet_to_gaussian", "concentration", alpha)
    _check_positive("dirichlet_to_gaussian", "concentration", alpha)
    log_alpha = jnp.log(alpha)
    loc = log_alpha - jnp.mean(log_alpha, axis=-1, keepdims=True)
    inv = 1.0 / alpha
    mean_inv = jnp.mean(inv, axis=-1)[..., None, None]
    covariance = (
        inv[..., :, None] * jnp.eye(k, dtype=alpha.dtype)
        - (inv[..., :, None] + inv[..., None, :]) / k
        + mean_inv / k
    )
    return loc, covariance


def dirichlet_logit_variance(concentration: ArrayLike) -> tuple[jax.Array, jax.Array]:
    r"""The mean and the diagonal of :func:`dirichlet_to_gaussian` in :math:`O(K)`.

    :math:`\sigma_k^2 = \frac{1}{\alpha_k}\big(1 - \frac2K\big) + \frac{1}{K^2}\sum_l
    \frac{1}{\alpha_l}` (the paper's per-logit variance), without forming the ``K x K`` matrix.
    """
    alpha = as_float_array("concentration", concentration)
    k = _check_categories("dirichlet_logit_variance", "concentration", alpha)
    _check_positive("dirichlet_logit_variance", "concentration", alpha)
    log_alpha = jnp.log(alpha)
    loc = log_alpha - jnp.mean(log_alpha, axis=-1, keepdims=True)
    inv = 1.0 / alpha
    variance = inv * (1.0 - 2.0 / k) + jnp.mean(inv, axis=-1, keepdims=True) / k
    return loc, variance


def gaussian_to_dirichlet(loc: ArrayLike, variance: ArrayLike) -> jax.Array:
    r"""Dirichlet concentration from a Gaussian over ``K`` logits (the inverse Laplace bridge).

    .. math::
        \alpha_k = \frac{1}{\sigma_k^2}\Big(1 - \frac2K + \frac{e^{\mu_k}}{K^2}\sum_l e^{-\mu_l}\Big),

    computed in log space (``logsumexp``), so a wide spread of logits does not overflow in the
    intermediate. The result does not change when a constant is added to ``loc``.

    :param loc: logit means :math:`\mu`, shape ``batch_shape + (K,)``.
    :param variance: per-logit **variances** :math:`\sigma_k^2` (not standard deviations), the
        diagonal of the logit covariance, shape broadcastable with ``loc``.
    :return: concentration :math:`\alpha`, shape ``batch_shape + (K,)``.
    """
    name = "gaussian_to_dirichlet"
    mu = as_float_array("loc", loc)
    var = as_float_array("variance", variance)
    k = _check_categories(name, "loc", mu)
    if var.ndim == mu.ndim + 1 and var.shape[-2:] == (k, k):
        raise ValueError(
            f"{name}: `variance` looks like a covariance matrix {var.shape}; pass its diagonal "
            "(the per-logit variances)."
        )
    _check_positive(name, "variance", var)
    mu, var = jnp.broadcast_arrays(mu, var)
    log_term = mu + logsumexp(-mu, axis=-1, keepdims=True) - 2.0 * math.log(k)
    log_numerator = jnp.logaddexp(math.log1p(-2.0 / k) if k > 2 else -jnp.inf, log_term)
    return jnp.exp(log_numerator - jnp.log(var))


def _sum_to_zero_gaussian(alr_loc: jax.Array, alr_cov: jax.Array) -> tuple[jax.Array, jax.Array]:
    """ALR Gaussian -> the Gaussian over ``K`` sum-to-zero logits with the same softmax law.

    ``z = P [y, 0]``: mean ``P [m, 0]``, marginal variances ``diag(P [[S, 0], [0, 0]] P)``.
    """
    n = alr_loc.shape[-1]
    padded_loc = jnp.concatenate([alr_loc, jnp.zeros_like(alr_loc[..., :1])], axis=-1)
    loc = padded_loc - jnp.mean(padded_loc, axis=-1, keepdims=True)
    # diag(P S P)_k = S_kk - 2 sum_j S_kj / K + sum_ij S_ij / K^2, S zero-padded to K x K
    row_mean = jnp.sum(alr_cov, axis=-1) / (n + 1)
    total_mean = jnp.sum(alr_cov, axis=(-2, -1)) / (n + 1) ** 2
    diag = jnp.diagonal(alr_cov, axis1=-2, axis2=-1) - 2.0 * row_mean
    diag = jnp.concatenate([diag, jnp.zeros_like(diag[..., :1])], axis=-1)
    return loc, diag + total_mean[..., None]


def laplace_bridge(d: Distribution, diagonal: bool = False) -> Distribution:
    r"""Map a Dirichlet to a logistic-normal law and a logistic-normal law to a Dirichlet.

    * ``Dirichlet`` :math:`\to` :class:`LogisticNormal` (``diagonal=False``): the full Laplace
      covariance carried into ALR coordinates, :math:`A\Sigma A^\top =
      \operatorname{diag}(1/\alpha_{1:K-1}) + \mathbf{1}\mathbf{1}^\top/\alpha_K`, mean
      :math:`\log\alpha_{1:K-1} - \log\alpha_K`.
    * ``Dirichlet`` :math:`\to` :class:`LogisticNormalSoftmax` (``diagonal=True``): the paper's
      fast path, independent logits with mean :math:`\mu` and standard deviations
      :math:`\sqrt{\Sigma_{kk}}`.
    * :class:`LogisticNormalSoftmax`, ``Normal`` (its last batch axis holds the ``K`` logits),
      ``Independent(Normal, 1)`` or ``MultivariateNormal`` over ``K`` logits :math:`\to`
      ``Dirichlet`` by :func:`gaussian_to_dirichlet` with the logit means and variances (the
      diagonal of the covariance), as in the paper.
    * :class:`LogisticNormal` or :class:`InvertibleGaussian` :math:`\to` ``Dirichlet``: an ALR
      Gaussian has no logits of its own; its sum-to-zero representative
      :math:`z = P[y, 0]` (the representation the forward bridge produces) supplies the mean and
      the marginal variances.

    Dirichlet :math:`\to` bridge :math:`\to` bridge returns the same concentration (up to float
    rounding) on both paths. Note that the two directions are not inverse maps of laws in
    general: the Gaussian-to-Dirichlet formula only reads the mean and the diagonal of a logit
    covariance, so two logit Gaussians with the same softmax law (say ``LogisticNormalSoftmax``
    and the ``LogisticNormal`` with its ALR parameters) can bridge to different Dirichlets.

    :param d: a ``Dirichlet`` or one of the Gaussian laws above (any batch shape).
    :param diagonal: for a Dirichlet, return the diagonal :class:`LogisticNormalSoftmax`.
    """
    if isinstance(d, Dirichlet):
        alpha = d.concentration
        _check_categories("laplace_bridge", "concentration", alpha)
        _check_positive("laplace_bridge", "concentration", alpha)
        if diagonal:
            loc, var = dirichlet_logit_variance(alpha)
            return LogisticNormalSoftmax(loc, jnp.sqrt(var))
        log_alpha = jnp.log(alpha)
        inv = 1.0 / alpha
        n = alpha.shape[-1] - 1
        alr_cov = inv[..., :-1, None] * jnp.eye(n, dtype=inv.dtype) + inv[..., -1, None, None]
        alr_loc = log_alpha[..., :-1] - log_alpha[..., -1:]
        return LogisticNormal(alr_loc, jnp.linalg.cholesky(alr_cov))
    if isinstance(d, LogisticNormalSoftmax):
        return Dirichlet(gaussian_to_dirichlet(d.loc, d.scale**2))
    if isinstance(d, (LogisticNormal, InvertibleGaussian)):
        loc, var = _sum_to_zero_gaussian(d.alr_loc, d.alr_covariance_matrix)
        return Dirichlet(gaussian_to_dirichlet(loc, var))
    if isinstance(d, MultivariateNormal):
        var = jnp.diagonal(d.covariance_matrix, axis1=-2, axis2=-1)
        return Dirichlet(gaussian_to_dirichlet(d.loc, var))
    if isinstance(d, Independent) and isinstance(d.base_dist, Normal):
        if d.reinterpreted_batch_ndims != 1:
            raise ValueError("laplace_bridge: Independent(Normal) must reinterpret exactly 1 dim.")
        base = d.base_dist
        loc = jnp.broadcast_to(base.loc, base.batch_shape)
        return Dirichlet(gaussian_to_dirichlet(loc, jnp.broadcast_to(base.scale**2, loc.shape)))
    if isinstance(d, Normal):
        if len(d.batch_shape) < 1:
            raise ValueError("laplace_bridge: a Normal over logits needs a batch axis of K logits.")
        loc = jnp.broadcast_to(d.loc, d.batch_shape)
        return Dirichlet(gaussian_to_dirichlet(loc, jnp.broadcast_to(d.scale**2, loc.shape)))
    raise TypeError(
        "laplace_bridge: expected a Dirichlet, LogisticNormal, LogisticNormalSoftmax, "
        f"InvertibleGaussian, Normal or MultivariateNormal, got {type(d).__name__}."
    )
