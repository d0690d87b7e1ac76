"""Score-function and antithetic functional estimators: REINFORCE (with a leave-one-out
baseline), ARM, DisARM and ARSM (contract in :mod:`numpyro_relax.estimators`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from numpyro_relax.infer.checks import (
    Family,
    _check_family,
    _prepare,
)
from numpyro_relax.infer.core import (
    antithetic_bernoulli,
    disarm_weight,
    loo_advantage,
)
from numpyro_relax.infer.relaxation import (
    _bcast,
    _hard,
    _noise,
    _perturb,
    _score,
)

# --------------------------------------------------------------------------------------------
# score function
# --------------------------------------------------------------------------------------------


def reinforce(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    baseline: Literal["none", "loo"] = "none",
) -> tuple[jax.Array, jax.Array]:
    r"""REINFORCE / score-function estimator, optionally with a leave-one-out baseline.

    With :math:`b_1, \dots, b_n \sim p_\theta` independent,

    .. math::

        \hat g = \frac{1}{n} \sum_{i=1}^n \big(f(b_i) - c_i\big)
            \nabla_\theta \log p_\theta(b_i),
        \qquad
        c_i = \begin{cases} 0 & \text{baseline="none"} \\
              \frac{1}{n - 1} \sum_{j \neq i} f(b_j) & \text{baseline="loo"} \end{cases}

    where :math:`\nabla_\theta \log p_\theta(b) = b - \sigma(\theta)` (Bernoulli) or
    :math:`b - \mathrm{softmax}(\theta)` (categorical). The leave-one-out baseline :math:`c_i`
    is independent of :math:`b_i`, so the estimator stays unbiased; it needs ``num_samples >= 2``.
    The value estimate is :math:`\frac{1}{n}\sum_i f(b_i)`.

    :param f: maps one discrete sample (shape of ``logits``) to a scalar.
    :param logits: logits :math:`\theta`; shape ``(...)`` (Bernoulli) or ``(..., K)``
        (categorical).
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples :math:`n` (evaluations of ``f``).
    :param baseline: ``"none"`` or ``"loo"`` (leave-one-out across the ``num_samples``).
    :return: ``(value_estimate, grad_estimate)``; ``grad_estimate`` has the shape of ``logits``.

    **References:**

    1. *Simple statistical gradient-following algorithms for connectionist reinforcement
       learning*, Ronald J. Williams (1992)
    2. *Buy 4 REINFORCE Samples, Get a Baseline for Free!*, Wouter Kool, Herke van Hoof,
       Max Welling (ICLR 2019 DeepRLStructPred workshop)
    """
    if baseline not in ("none", "loo"):
        raise ValueError(f"reinforce: `baseline` must be 'none' or 'loo', got {baseline!r}.")
    loo = baseline == "loo"
    theta, n = _prepare(
        "reinforce",
        f,
        logits,
        family,
        num_samples,
        minimum=2 if loo else 1,
        why=" for baseline='loo' (the baseline of each sample is the mean of the others)"
        if loo
        else "",
    )

    def one(u: jax.Array) -> tuple[jax.Array, jax.Array]:
        b = _hard(_perturb(theta, u, family), family)
        return f(b), _score(theta, b, family)

    fs, scores = jax.vmap(one)(_noise(key, n, theta))
    if loo:
        coef = loo_advantage(fs)
    else:
        coef = fs
    grad = jnp.mean(_bcast(coef, scores) * scores, axis=0)
    return jnp.mean(fs), grad


# --------------------------------------------------------------------------------------------
# antithetic estimators for Bernoulli: ARM, DisARM
# --------------------------------------------------------------------------------------------


def _antithetic_pairs(
    name: str, f: Callable, logits: ArrayLike, key: jax.Array, family: Any, num_samples: Any
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    _check_family(name, family)
    if family != "bernoulli":
        raise ValueError(
            f"{name}: only family='bernoulli' is supported, got family={family!r} "
            "(use `arsm` for categorical variables)."
        )
    theta, n = _prepare(name, f, logits, family, num_samples)

    def one(u: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
        b, b_anti = antithetic_bernoulli(jnp.log(u) - jnp.log1p(-u), theta)
        return u, b, b_anti, f(b), f(b_anti)

    return (theta, *jax.vmap(one)(_noise(key, n, theta)))


def arm(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
) -> tuple[jax.Array, jax.Array]:
    r"""Augment-REINFORCE-Merge (ARM) estimator for Bernoulli variables.

    With :math:`u \sim U(0, 1)^D` and the antithetic pair
    :math:`b = 1[u < \sigma(\theta)]`, :math:`\tilde b = 1[u > \sigma(-\theta)]` (both
    :math:`\sim p_\theta`),

    .. math::

        \hat g_d = \big(f(\tilde b) - f(b)\big)\left(u_d - \tfrac{1}{2}\right),

    averaged over ``num_samples`` independent draws of :math:`u` (each costs two evaluations of
    ``f``). The value estimate is the average of :math:`\frac{1}{2}(f(b) + f(\tilde b))`.
    Unbiased; only ``family="bernoulli"`` (a ``ValueError`` otherwise).

    :param f: maps one binary sample (shape of ``logits``) to a scalar.
    :param logits: Bernoulli logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: must be ``"bernoulli"``.
    :param num_samples: number of antithetic pairs.
    :return: ``(value_estimate, grad_estimate)``.

    **References:**

    1. *ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks*,
       Mingzhang Yin, Mingyuan Zhou (ICLR 2019)
    """
    theta, u, b, b_anti, fb, fb_anti = _antithetic_pairs("arm", f, logits, key, family, num_samples)
    grad = jnp.mean(_bcast(fb_anti - fb, u) * (u - 0.5), axis=0)
    return jnp.mean(0.5 * (fb + fb_anti)), grad


def disarm(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
) -> tuple[jax.Array, jax.Array]:
    r"""DisARM estimator for Bernoulli variables (ARM with the uniform integrated out).

    With the antithetic pair :math:`b = 1[u < \sigma(\theta)]`,
    :math:`\tilde b = 1[u > \sigma(-\theta)]` of :func:`arm`,

    .. math::

        \hat g_d = \tfrac{1}{2}\big(f(b) - f(\tilde b)\big)\,(-1)^{\tilde b_d}\,
            1[b_d \neq \tilde b_d]\,\sigma(|\theta_d|),

    averaged over ``num_samples`` pairs. It is ARM Rao-Blackwellised over :math:`u` given
    :math:`(b, \tilde b)`, hence unbiased with variance never larger than ARM's. Only
    ``family="bernoulli"`` (for categorical variables: :func:`disarm_categorical`, the
    stick-breaking DisARM of Dong, Mnih & Tucker, NeurIPS 2021).

    :param f: maps one binary sample (shape of ``logits``) to a scalar.
    :param logits: Bernoulli logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: must be ``"bernoulli"``.
    :param num_samples: number of antithetic pairs (two evaluations of ``f`` each).
    :return: ``(value_estimate, grad_estimate)``.

    **References:**

    1. *DisARM: An Antithetic Gradient Estimator for Binary Latent Variables*,
       Zhe Dong, Andriy Mnih, George Tucker (NeurIPS 2020)
    2. *ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks*,
       Mingzhang Yin, Mingyuan Zhou (ICLR 2019)
    """
    theta, _, b, b_anti, fb, fb_anti = _antithetic_pairs(
        "disarm", f, logits, key, family, num_samples
    )
    weight = disarm_weight(theta, b, b_anti)
    grad = jnp.mean(_bcast(fb - fb_anti, weight) * weight, axis=0)
    return jnp.mean(0.5 * (fb + fb_anti)), grad


# --------------------------------------------------------------------------------------------
# ARSM for categorical variables
# --------------------------------------------------------------------------------------------


def _swap_tables(num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The swaps ``m < j`` (two index vectors) and the (K, K) index into ``[f(z), f(swaps)...]``.

    ``O(K^2)`` integers: the swapped permutations themselves (``K^3``) are never formed.
    """
    rows, cols = np.triu_indices(num_classes, k=1)
    index = np.zeros((num_classes, num_classes), dtype=np.int32)
    index[rows, cols] = np.arange(1, rows.size + 1)
    index[cols, rows] = np.arange(1, rows.size + 1)
    return rows.astype(np.int32), cols.astype(np.int32), index


def arsm(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "categorical",
    num_samples: int = 1,
) -> tuple[jax.Array, jax.Array]:
    r"""Augment-REINFORCE-Swap-Merge (ARSM) estimator for categorical variables.

    For each categorical variable :math:`v` draw :math:`\pi_v \sim \mathrm{Dirichlet}(1_K)`; the
    sample is :math:`z_v = \arg\min_i \pi_{vi} e^{-\theta_{vi}}` (distributed as
    :math:`\mathrm{softmax}(\theta_v)`). The pseudo-action :math:`z^{m \rightleftharpoons j}`
    is the same argmin after swapping :math:`\pi_{\cdot m}` and :math:`\pi_{\cdot j}` in every
    variable. With :math:`F_{mj} = f(z^{m \rightleftharpoons j})`,

    .. math::

        \hat g_{vc} = \sum_{j=1}^K \Big(F_{cj} - \frac{1}{K}\sum_{m=1}^K F_{mj}\Big)
            \Big(\frac{1}{K} - \pi_{vj}\Big),

    averaged over ``num_samples`` draws. Swapping two coordinates of every :math:`\pi_v`
    preserves the Dirichlet law, which makes each term unbiased; the merged sum over the
    reference category :math:`j` is the ARSM estimator. ``f`` is evaluated at
    :math:`K(K-1)/2 + 1` (pseudo-)actions per draw, whatever the number of variables: ``K`` swaps
    at a time (:func:`jax.vmap` inside :func:`jax.lax.map`), so a draw holds :math:`O(K^2)`
    numbers per variable, not the :math:`O(K^3)` of every pseudo-action at once. When all
    pseudo-actions coincide with :math:`z` the estimate is exactly zero.

    ``family="bernoulli"`` is handled as a two-class categorical with logits
    :math:`(0, \theta)`.

    :param f: maps one sample (one-hot of shape ``logits.shape``, or bits for Bernoulli) to a
        scalar.
    :param logits: logits, ``(..., K)`` (categorical) or any shape (Bernoulli).
    :param key: a JAX PRNG key.
    :param family: ``"categorical"`` (default) or ``"bernoulli"``.
    :param num_samples: number of Dirichlet draws.
    :return: ``(value_estimate, grad_estimate)``; the value estimate averages :math:`f(z)`.

    **References:**

    1. *ARSM: Augment-REINFORCE-Swap-Merge Estimator for Gradient Backpropagation Through
       Categorical Variables*, Mingzhang Yin, Yuguang Yue, Mingyuan Zhou (ICML 2019)
    """
    theta, n = _prepare("arsm", f, logits, family, num_samples)
    if family == "bernoulli":
        cat_logits = jnp.stack([jnp.zeros_like(theta), theta], axis=-1)
        value, g = arsm(
            lambda x: f(x[..., 1]), cat_logits, key, family="categorical", num_samples=n
        )
        return value, g[..., 1]

    num_classes = theta.shape[-1]
    rows, cols, index = _swap_tables(num_classes)
    categories = jnp.arange(num_classes)

    def one(u: jax.Array) -> tuple[jax.Array, jax.Array]:
        log_e = jnp.log(-jnp.log(u))  # pi = e / sum(e), e ~ Exp(1)
        pi = jax.nn.softmax(log_e, axis=-1)
        z = _hard(theta - log_e, "categorical")

        def f_swap(pair: tuple[jax.Array, jax.Array]) -> jax.Array:
            m, j = pair  # the pseudo-action z^{m <-> j}: pi_m and pi_j swapped in every variable
            perm = jnp.where(categories == m, j, jnp.where(categories == j, m, categories))
            return f(_hard(theta - log_e[..., perm], "categorical"))

        f_swaps = lax.map(f_swap, (rows, cols), batch_size=num_classes)
        f_all = jnp.concatenate([f(z)[None], f_swaps])
        fmat = f_all[index]  # F[m, j]
        delta = fmat - jnp.mean(fmat, axis=0, keepdims=True)
        g = jnp.einsum("...j,cj->...c", 1.0 / num_classes - pi, delta)
        return f_all[0], g

    fs, grads = jax.vmap(one)(_noise(key, n, theta))
    return jnp.mean(fs), jnp.mean(grads, axis=0)
