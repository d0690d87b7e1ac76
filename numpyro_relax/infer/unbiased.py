r"""Unbiased functional estimators beyond REINFORCE-LOO, ARM/DisARM and ARSM: double control
variates (:func:`double_cv`), the CatLog-derivative trick (:func:`indecater`) and stick-breaking
DisARM for categorical variables (:func:`disarm_categorical`; ``estimators.disarm`` stays
Bernoulli-only).

Contract as in :mod:`numpyro_relax.estimators`: ``f`` maps one sample with the shape of
``logits`` (bits, or one-hot rows for ``family="categorical"``) to a scalar; every function returns
``(value_estimate, grad_estimate)``, vectorised over ``num_samples`` with :func:`jax.vmap`.
These are functional forms only; they are not :class:`~numpyro_relax.infer.TraceDiscrete_ELBO`
estimator names yet.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax, random
from jax.typing import ArrayLike

from numpyro_relax.infer.checks import Family, _prepare
from numpyro_relax.infer.core import antithetic_bernoulli, disarm_weight, logit_uniform

__all__ = ["disarm_categorical", "double_cv", "indecater"]


def _sample(theta: jax.Array, key: jax.Array, n: int, family: str) -> jax.Array:
    """``n`` exact samples (bits or one-hot rows), shape ``(n, *theta.shape)``."""
    if family == "bernoulli":
        return (logit_uniform(key, (n,) + theta.shape, theta.dtype) < theta).astype(theta.dtype)
    gumbel = random.gumbel(key, (n,) + theta.shape, theta.dtype)
    return jax.nn.one_hot(jnp.argmax(theta + gumbel, axis=-1), theta.shape[-1], dtype=theta.dtype)


def _mean_and_cov_apply(theta: jax.Array, family: str) -> tuple[jax.Array, Callable]:
    r""":math:`\mu = \mathbb{E}[b]` and :math:`x \mapsto \mathrm{Cov}(b)\,x` (the covariance of
    the score :math:`b - \mu`: :math:`\mu(1-\mu)x` for bits, :math:`\mu \odot (x - \mu^\top x)`
    row-wise for one-hot)."""
    if family == "bernoulli":
        mu = jax.nn.sigmoid(theta)
        return mu, lambda x: mu * (1.0 - mu) * x
    mu = jax.nn.softmax(theta, axis=-1)
    return mu, lambda x: mu * (x - jnp.sum(mu * x, axis=-1, keepdims=True))


def _bcast(x: jax.Array, like: jax.Array) -> jax.Array:
    return x.reshape(x.shape + (1,) * (like.ndim - x.ndim))


# --------------------------------------------------------------------------------------------
# double control variates
# --------------------------------------------------------------------------------------------


def double_cv(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 2,
    alpha: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""REINFORCE leave-one-out with a second, Taylor-expansion control variate (Titsias & Shi,
    AISTATS 2022). With samples :math:`b_1..b_n` (:math:`n \geq 2`), scores
    :math:`s_i = b_i - \mu`, gradients :math:`\nabla f(b_i)` of ``f`` at the discrete points and
    their leave-one-out means :math:`\bar g_{-i} = \frac{1}{n-1}\sum_{j\neq i}\nabla f(b_j)`,

    .. math::

        c_i = \alpha\,\bar g_{-i}^\top (b_i - \mu),\qquad
        \hat g = \frac1n\sum_i\Big(f(b_i) - c_i - \frac{1}{n-1}\sum_{j\ne i}\big(f(b_j) - c_j\big)
            \Big)\,s_i \;+\; \alpha\,\mathrm{Cov}(b)\,\frac1n\sum_i \nabla f(b_i).

    The first-order Taylor term :math:`c_i` predicts the part of :math:`f(b_i)` that varies with
    :math:`b_i` from the other samples' gradients, and is taken out of the leave-one-out
    advantage; its contribution given them, :math:`\alpha\,\mathrm{Cov}(b)\,\bar g_{-i}`, is
    added back in closed form
    (:math:`\mathrm{Cov}(b) = \mathrm{diag}(\mu(1-\mu))` for bits, the softmax Jacobian per
    categorical row), so the estimator stays unbiased for every :math:`\alpha`. With
    :math:`\alpha = 1` (the default) it is exact, with zero variance, for ``f`` linear in
    :math:`b`. The paper adapts :math:`\alpha` online to minimise the variance (the reference
    implementation's sign convention is the opposite: its :math:`\alpha` near :math:`-1` is this
    :math:`\alpha = 1`); here it is an option (``alpha=0`` is
    :func:`~numpyro_relax.estimators.loo`). No extra evaluations of ``f``, but one gradient of
    ``f`` per sample: ``f`` must be differentiable at the discrete points (defined on the cube /
    simplex). Bits are the paper's case; one-hot rows use the same identity.

    :param alpha: weight of the Taylor control variate.
    :return: ``(value_estimate, grad_estimate)``.

    **References:** *Double Control Variates for Gradient Estimation in Discrete Latent Variable
    Models*, M. K. Titsias, J. Shi (AISTATS 2022, arXiv:2111.05300).
    """
    theta, n = _prepare(
        "double_cv", f, logits, family, num_samples, 2, " (leave-one-out baselines)"
    )
    mu, cov_apply = _mean_and_cov_apply(theta, family)
    b = _sample(theta, key, n, family)
    fs, grads = jax.vmap(jax.value_and_grad(f))(b)
    scores = b - mu
    g_loo = (jnp.sum(grads, axis=0) - grads) / (n - 1)
    event_axes = tuple(range(1, b.ndim))
    cv = alpha * jnp.sum(g_loo * scores, axis=event_axes)
    h = fs - cv
    coef = h - (jnp.sum(h) - h) / (n - 1)
    grad = jnp.mean(_bcast(coef, scores) * scores, axis=0) + alpha * cov_apply(jnp.mean(grads, 0))
    return jnp.mean(fs), grad


# --------------------------------------------------------------------------------------------
# IndeCateR
# --------------------------------------------------------------------------------------------


def indecater(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "categorical",
    num_samples: int = 1,
) -> tuple[jax.Array, jax.Array]:
    r"""IndeCateR, the CatLog-derivative trick for independent categoricals (De Smet, Sansone &
    Zuidberg Dos Martires, NeurIPS 2023): for each of the :math:`D` variables :math:`x_d` of a
    sample :math:`x`, the expectation over :math:`x_d` alone is done exactly,

    .. math::

        \hat g_d = \frac1n\sum_{i=1}^n \sum_{k=1}^K \nabla_{\theta_d} p_d(k)\,
            f(x^{(i)}_{d \leftarrow k})
            = \frac1n\sum_i p_d \odot \big(F^{(i)}_{d} - p_d^\top F^{(i)}_{d}\big),
        \qquad F^{(i)}_{dk} = f(x^{(i)}_{d \leftarrow k}),

    unbiased because :math:`x_{\neq d}` is independent of :math:`x_d`, and exact when ``f`` is a
    sum of functions of one variable each. Costs :math:`n D K` evaluations of ``f``, all in one
    :func:`jax.vmap` (memory :math:`n (DK)^2` for the substituted samples). Bits are the
    :math:`K = 2` case: :math:`\hat g_d = \sigma'(\theta_d)(f(x_{d\leftarrow 1}) -
    f(x_{d\leftarrow 0}))`. The value estimate is :math:`\frac1n\sum_i f(x^{(i)})`.

    :return: ``(value_estimate, grad_estimate)``.

    **References:** *Differentiable Sampling of Categorical Distributions Using the CatLog-
    Derivative Trick*, L. De Smet, E. Sansone, P. Zuidberg Dos Martires (NeurIPS 2023).
    """
    theta, n = _prepare("indecater", f, logits, family, num_samples)
    x = _sample(theta, key, n, family)
    if family == "bernoulli":
        size = theta.size
        eye = jnp.eye(size, dtype=theta.dtype).reshape((size,) + theta.shape)

        def per_sample(xi: jax.Array) -> jax.Array:
            ones = jnp.where(eye > 0, 1.0, xi)  # x with x_d <- 1, for each d
            zeros = jnp.where(eye > 0, 0.0, xi)
            diff = jax.vmap(f)(ones) - jax.vmap(f)(zeros)
            return diff.reshape(theta.shape)

        diffs = jax.vmap(per_sample)(x)
        grad = jax.nn.sigmoid(theta) * jax.nn.sigmoid(-theta) * jnp.mean(diffs, axis=0)
        return jnp.mean(jax.vmap(f)(x)), grad
    k = theta.shape[-1]
    rows = theta.size // k
    probs = jax.nn.softmax(theta, axis=-1)
    # which row is substituted (rows, 1, rows, 1) and by which one-hot (1, K, 1, K)
    row_mask = jnp.eye(rows, dtype=bool)[:, None, :, None]
    values = jnp.eye(k, dtype=theta.dtype)[None, :, None, :]

    def per_sample(xi: jax.Array) -> jax.Array:
        flat = xi.reshape(1, 1, rows, k)
        variants = jnp.where(row_mask, values, flat).reshape((rows * k,) + theta.shape)
        return jax.vmap(f)(variants).reshape(theta.shape)

    table = jax.vmap(per_sample)(x)  # (n, ..., K): F_dk per sample
    centred = table - jnp.sum(probs * table, axis=-1, keepdims=True)
    return jnp.mean(jax.vmap(f)(x)), probs * jnp.mean(centred, axis=0)


# --------------------------------------------------------------------------------------------
# stick-breaking DisARM for categorical variables
# --------------------------------------------------------------------------------------------


def _stick_logits(theta_sorted: jax.Array) -> jax.Array:
    r"""Stick-breaking logits :math:`\alpha_k = \theta_k - \log\sum_{j>k} e^{\theta_j}`,
    :math:`k = 1..K-1`: :math:`\sigma(\alpha_k) = P(x = k \mid x \geq k)`."""
    tail = lax.cumlogsumexp(theta_sorted, axis=theta_sorted.ndim - 1, reverse=True)
    return theta_sorted[..., :-1] - tail[..., 1:]


def _first_one(bits: jax.Array, perm: jax.Array) -> jax.Array:
    """One-hot (original order) of the first category whose stick-breaking bit is 1 (the last
    category if none)."""
    ones = jnp.ones(bits.shape[:-1] + (1,), bits.dtype)
    idx = jnp.argmax(jnp.concatenate([bits, ones], axis=-1), axis=-1)
    cat = jnp.take_along_axis(perm, idx[..., None], axis=-1)[..., 0]
    return jax.nn.one_hot(cat, perm.shape[-1], dtype=bits.dtype)


def disarm_categorical(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    num_samples: int = 1,
) -> tuple[jax.Array, jax.Array]:
    r"""Stick-breaking DisARM for categorical variables (Dong, Mnih & Tucker, NeurIPS 2021).

    Each categorical row is written as :math:`K-1` independent bits
    :math:`b_k \sim \mathrm{Bernoulli}(\sigma(\alpha_k))`,
    :math:`\alpha_k = \theta_{(k)} - \log\sum_{j>k} e^{\theta_{(j)}}`, the value being the first
    category whose bit is 1 (the last if none): an exact sample. The categories are visited in
    order of decreasing probability (a locally constant permutation: any order gives an unbiased
    estimator, this one puts the mass in the first decisions). DisARM's antithetic pairs on the
    bits,

    .. math::

        \hat g_{\alpha_k} = \tfrac12\big(f(x) - f(\tilde x)\big)(-1)^{\tilde b_k}
            1[b_k \ne \tilde b_k]\,\sigma(|\alpha_k|),

    are carried to the logits by the Jacobian of
    :math:`\alpha(\theta)` (:func:`jax.vjp`). Two evaluations of ``f`` per pair.

    :param num_samples: number of antithetic pairs.
    :return: ``(value_estimate, grad_estimate)``.

    **References:** *Coupled Gradient Estimators for Discrete Latent Variables*, Z. Dong,
    A. Mnih, G. Tucker (NeurIPS 2021, arXiv:2106.08056).
    """
    theta, n = _prepare("disarm", f, logits, "categorical", num_samples)
    perm = jnp.argsort(-lax.stop_gradient(theta), axis=-1)

    def alpha_of(t: jax.Array) -> jax.Array:
        return _stick_logits(jnp.take_along_axis(t, perm, axis=-1))

    alpha, pullback = jax.vjp(alpha_of, theta)
    noise = logit_uniform(key, (n,) + alpha.shape, alpha.dtype)

    def one(logistic: jax.Array) -> tuple[jax.Array, jax.Array]:
        b, b_anti = antithetic_bernoulli(logistic, alpha)
        fb, fb_anti = f(_first_one(b, perm)), f(_first_one(b_anti, perm))
        return 0.5 * (fb + fb_anti), (fb - fb_anti) * disarm_weight(alpha, b, b_anti)

    values, g_alpha = jax.vmap(one)(noise)
    (grad,) = pullback(jnp.mean(g_alpha, axis=0))
    return jnp.mean(values), grad
