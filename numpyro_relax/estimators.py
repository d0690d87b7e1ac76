"""Functional gradient estimators for expectations over discrete random variables.

Every estimator has the signature

.. code-block:: python

    value, grad = estimator(f, logits, key, *, family="bernoulli", num_samples=1, **options)

and estimates :math:`\\mathbb{E}_{b \\sim p_\\theta}[f(b)]` (``value``) and its gradient
:math:`\\nabla_\\theta \\mathbb{E}_{b \\sim p_\\theta}[f(b)]` with respect to the logits
:math:`\\theta` (``grad``, the shape of ``logits``), where

- ``family="bernoulli"``: :math:`b` has the shape of ``logits`` and independent entries
  :math:`b_d \\sim \\mathrm{Bernoulli}(\\sigma(\\theta_d))`, with values in :math:`\\{0, 1\\}`;
- ``family="categorical"``: ``logits`` has shape ``(..., K)`` and :math:`b` is a one-hot array of
  the same shape, independently :math:`b_{v} \\sim \\mathrm{OneHotCategorical}(\\mathrm{softmax}
  (\\theta_{v}))` for every leading index :math:`v`.

``f`` maps **one** sample (an array with the shape of ``logits``) to a scalar. The estimators draw
``num_samples`` independent samples (vectorised with :func:`jax.vmap`) and average. They are pure
functions of ``(logits, key)``: wrap them in :func:`functools.partial` to fix ``f`` and the
options, then ``jax.jit`` / ``jax.vmap`` them.

Unbiased: :func:`reinforce`, :func:`arm`, :func:`disarm`, :func:`arsm`, :func:`rebar` and
:func:`relax`. Biased (pathwise through a relaxation): :func:`gumbel_softmax` and
:func:`straight_through`. :func:`rebar`, :func:`relax`, :func:`gumbel_softmax` and
:func:`straight_through` evaluate ``f`` (or the surrogate) at relaxed, non-discrete inputs, so
``f`` must then be defined and differentiable on the relaxed domain (the unit cube for
``"bernoulli"``, the simplex for ``"categorical"``).

Conventions for the relaxations used by REBAR, RELAX and the pathwise estimators:

- Bernoulli: :math:`z = \\theta + \\log u - \\log(1 - u)` with :math:`u \\sim U(0, 1)` (a
  logistic variable), :math:`b = H(z) = 1[z > 0]`, relaxed sample
  :math:`\\sigma_\\lambda(z) = \\mathrm{sigmoid}(z / \\lambda)`.
- Categorical: :math:`z = \\log\\mathrm{softmax}(\\theta) + g` with :math:`g` standard Gumbel,
  :math:`b = \\mathrm{onehot}(\\arg\\max z)`, relaxed sample
  :math:`\\sigma_\\lambda(z) = \\mathrm{softmax}(z / \\lambda)`.

Uniforms are clamped to ``(tiny, 1 - eps)`` and everything is computed in logit space
(``log_sigmoid``, ``log_softmax``, ``logaddexp``), so logits up to :math:`|\\theta| = 30` in float32
give finite values and gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from numpyro_relax.distributions.bernoulli import bernoulli_log_pmf

__all__ = [
    "arm",
    "arsm",
    "decoupled_st",
    "disarm",
    "disarm_categorical",
    "double_cv",
    "gst",
    "gumbel_rao",
    "gumbel_softmax",
    "indecater",
    "rebar",
    "relax",
    "reinmax",
    "relax_variance_grad",
    "reinforce",
    "loo",
    "st",
    "st_gumbel",
    "straight_through",
    "vargrad",
]

from numpyro_relax.infer.checks import (  # noqa: E402 - the argument checks live with the core
    Family,
    _check_family,
    _check_positive,
    _prepare,
)
from numpyro_relax.infer.core import (  # noqa: E402 - the one estimator core
    antithetic_bernoulli,
    disarm_weight,
    loo_advantage,
)
from numpyro_relax.infer.core import uniform as _uniform  # noqa: E402

# --------------------------------------------------------------------------------------------
# sampling helpers (logit space)
# --------------------------------------------------------------------------------------------


def _perturb(logits: jax.Array, u: jax.Array, family: str) -> jax.Array:
    """The relaxed logit-space variable ``z`` whose hard threshold / argmax is the sample."""
    if family == "bernoulli":
        return logits + (jnp.log(u) - jnp.log1p(-u))
    gumbel = -jnp.log(-jnp.log(u))
    return jax.nn.log_softmax(logits, axis=-1) + gumbel


def _hard(z: jax.Array, family: str) -> jax.Array:
    if family == "bernoulli":
        return (z > 0).astype(z.dtype)
    return jax.nn.one_hot(jnp.argmax(z, axis=-1), z.shape[-1], dtype=z.dtype)


def _soft(z: jax.Array, temperature: ArrayLike, family: str) -> jax.Array:
    if family == "bernoulli":
        return jax.nn.sigmoid(z / temperature)
    return jax.nn.softmax(z / temperature, axis=-1)


def _conditional(logits: jax.Array, v: jax.Array, b: jax.Array, family: str) -> jax.Array:
    """Reparameterised sample of ``z | b`` (``v ~ U(0, 1)``), differentiable in ``logits``.

    Bernoulli: ``u | b=1 ~ U(1 - p, 1)`` and ``u | b=0 ~ U(0, 1 - p)``, written in logit space.
    Categorical: the maximum of Gumbel-perturbed normalised logits is a standard Gumbel
    independent of the argmax; the others are Gumbels truncated below it.
    """
    if family == "bernoulli":
        log_v_odds = jnp.log(v) - jnp.log1p(-v)
        # z = theta + logit(u'): b = 1 gives log(1 + v / ((1 - v)(1 - p))) > 0,
        # b = 0 gives -log(1 + (1 - v) / (v p)) < 0.
        z1 = jax.nn.softplus(log_v_odds - jax.nn.log_sigmoid(-logits))
        z0 = -jax.nn.softplus(-log_v_odds - jax.nn.log_sigmoid(logits))
        return jnp.where(b > 0, z1, z0)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    log_e = jnp.log(-jnp.log(v))  # log of Exp(1) variables
    log_e_top = jnp.sum(jnp.where(b > 0, log_e, 0.0), axis=-1, keepdims=True)
    others = -jnp.logaddexp(log_e - log_probs, log_e_top)
    return jnp.where(b > 0, -log_e_top, others)


def _log_prob(logits: jax.Array, b: jax.Array, family: str) -> jax.Array:
    if family == "bernoulli":
        return jnp.sum(bernoulli_log_pmf(b, logits))
    return jnp.sum(b * jax.nn.log_softmax(logits, axis=-1))


def _score(logits: jax.Array, b: jax.Array, family: str) -> jax.Array:
    """``d log p(b) / d logits``."""
    if family == "bernoulli":
        return b - jax.nn.sigmoid(logits)
    return b - jax.nn.softmax(logits, axis=-1)


def _noise(key: jax.Array, num_samples: int, logits: jax.Array) -> jax.Array:
    """``num_samples`` independent clamped uniforms with the shape of ``logits``, in one draw."""
    return _uniform(key, (num_samples,) + logits.shape, logits.dtype)


def _bcast(x: jax.Array, like: jax.Array) -> jax.Array:
    """Reshape per-sample scalars ``(n,)`` to broadcast against ``(n, *logits.shape)``."""
    return x.reshape(x.shape + (1,) * (like.ndim - x.ndim))


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


# --------------------------------------------------------------------------------------------
# control-variate estimators with the conditional relaxation: REBAR, RELAX
# --------------------------------------------------------------------------------------------


def _cv_sample(
    f: Callable[[jax.Array], jax.Array],
    control: Callable[[jax.Array], jax.Array],
    theta: jax.Array,
    u: jax.Array,
    v: jax.Array,
    family: str,
) -> tuple[jax.Array, jax.Array]:
    """One-sample REBAR/RELAX gradient with control variate ``control(z)`` (noise ``u``, ``v``).

    The coefficient of the score is computed from ``stop_gradient(theta)`` rather than with
    ``stop_gradient`` on its value, so that it stays differentiable in the parameters of
    ``control`` (needed by :func:`relax_variance_grad`).
    """
    b = _hard(_perturb(lax.stop_gradient(theta), u, family), family)
    fb = f(b)
    coef = fb - control(_conditional(lax.stop_gradient(theta), v, b, family))

    def surrogate(t: jax.Array) -> jax.Array:
        z = _perturb(t, u, family)
        z_tilde = _conditional(t, v, b, family)
        return coef * _log_prob(t, b, family) + control(z) - control(z_tilde)

    return fb, jax.grad(surrogate)(theta)


def _cv_noise(key: jax.Array, num_samples: int, theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Uniforms ``u`` (for ``z``) and ``v`` (for ``z~ | b``), ``num_samples`` of each."""
    noise = _uniform(key, (2, num_samples) + theta.shape, theta.dtype)
    return noise[0], noise[1]


def rebar(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 0.5,
    eta: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""REBAR estimator: REINFORCE with the concrete relaxation as a control variate.

    With :math:`z` the relaxed logit-space variable (see the module docstring),
    :math:`b = H(z)`, and :math:`\tilde z \sim p_\theta(z \mid b)` reparameterised by an
    independent uniform :math:`v` (Bernoulli: :math:`u \mid b` is uniform on
    :math:`(1 - \sigma(\theta), 1)` or :math:`(0, 1 - \sigma(\theta))`; categorical: the
    top Gumbel at :math:`b` is standard Gumbel, the others are Gumbels truncated below it),

    .. math::

        \hat g = \big(f(b) - \eta f(\sigma_\lambda(\tilde z))\big)\nabla_\theta \log p_\theta(b)
            + \eta \nabla_\theta f(\sigma_\lambda(z)) - \eta \nabla_\theta
            f(\sigma_\lambda(\tilde z)),

    averaged over ``num_samples`` draws. Unbiased for every temperature :math:`\lambda > 0` and
    scale :math:`\eta`, because :math:`\mathbb{E}[c(z)] = \mathbb{E}_b\,\mathbb{E}[c(\tilde z)
    \mid b]`. ``f`` must accept relaxed inputs (the unit cube / the simplex) and be
    differentiable there. To tune :math:`\lambda` and :math:`\eta` by minimising the variance,
    use :func:`relax_variance_grad` with the surrogate
    ``lambda p, z: p["eta"] * f(sigmoid(z / p["temperature"]))``.

    :param f: maps one sample (shape of ``logits``) to a scalar; evaluated at discrete and
        relaxed points.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples (three evaluations of ``f`` each).
    :param temperature: relaxation temperature :math:`\lambda > 0`.
    :param eta: control-variate scale :math:`\eta`.
    :return: ``(value_estimate, grad_estimate)``; the value estimate averages :math:`f(b)`.

    **References:**

    1. *REBAR: Low-variance, unbiased gradient estimates for discrete latent variable models*,
       George Tucker, Andriy Mnih, Chris J. Maddison, Dieterich Lawson, Jascha Sohl-Dickstein
       (NeurIPS 2017)
    """
    theta, n = _prepare("rebar", f, logits, family, num_samples)
    _check_positive("rebar", "temperature", temperature)

    def control(z: jax.Array) -> jax.Array:
        return eta * f(_soft(z, temperature, family))

    fs, grads = jax.vmap(lambda u, v: _cv_sample(f, control, theta, u, v, family))(
        *_cv_noise(key, n, theta)
    )
    return jnp.mean(fs), jnp.mean(grads, axis=0)


def _relax_checks(name: str, surrogate: Any, surrogate_params: Any, theta: jax.Array) -> None:
    if not callable(surrogate):
        raise ValueError(f"{name}: `surrogate` must be callable(params, z), got {surrogate!r}.")
    out = jax.eval_shape(
        surrogate, surrogate_params, jax.ShapeDtypeStruct(theta.shape, theta.dtype)
    )
    if not hasattr(out, "shape") or out.shape != ():
        raise ValueError(
            f"{name}: `surrogate(surrogate_params, z)` must return a scalar for z of shape "
            f"{theta.shape}, got {getattr(out, 'shape', type(out).__name__)}."
        )


def relax(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    surrogate: Callable[[Any, jax.Array], jax.Array],
    surrogate_params: Any,
) -> tuple[jax.Array, jax.Array]:
    r"""RELAX estimator: REBAR with a free-form learned control variate :math:`c_\phi`.

    .. math::

        \hat g = \big(f(b) - c_\phi(\tilde z)\big)\nabla_\theta \log p_\theta(b)
            + \nabla_\theta c_\phi(z) - \nabla_\theta c_\phi(\tilde z),

    with :math:`z`, :math:`b = H(z)` and :math:`\tilde z \sim p_\theta(z \mid b)` as in
    :func:`rebar`. ``surrogate(surrogate_params, z)`` receives the relaxed **logit-space**
    variable :math:`z` (shape of ``logits``; :math:`\theta + \mathrm{Logistic}` for Bernoulli,
    :math:`\log\mathrm{softmax}(\theta) + \mathrm{Gumbel}` for categorical) and returns a scalar;
    it must be differentiable in ``z``. Unbiased for any surrogate; REBAR is the surrogate
    :math:`c(z) = \eta f(\sigma_\lambda(z))`. Here ``f`` is only evaluated at discrete samples.
    Fit :math:`\phi` by minimising the estimator's variance with :func:`relax_variance_grad`.

    :param f: maps one discrete sample to a scalar.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples.
    :param surrogate: the control variate ``c(params, z) -> scalar``.
    :param surrogate_params: its parameters :math:`\phi` (any pytree).
    :return: ``(value_estimate, grad_estimate)``; the value estimate averages :math:`f(b)`.

    **References:**

    1. *Backpropagation through the Void: Optimizing control variates for black-box gradient
       estimation*, Will Grathwohl, Dami Choi, Yuhuai Wu, Geoffrey Roeder, David Duvenaud
       (ICLR 2018)
    2. *REBAR: Low-variance, unbiased gradient estimates for discrete latent variable models*,
       George Tucker et al. (NeurIPS 2017)
    """
    value, grad, _ = _relax_impl(
        "relax", f, logits, key, family, num_samples, surrogate, surrogate_params, False
    )
    return value, grad


def relax_variance_grad(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    surrogate: Callable[[Any, jax.Array], jax.Array],
    surrogate_params: Any,
) -> tuple[jax.Array, jax.Array, Any]:
    r"""RELAX estimate plus the gradient of its variance with respect to the surrogate.

    Because :math:`\mathbb{E}[\hat g]` does not depend on :math:`\phi`,

    .. math::

        \nabla_\phi \operatorname{tr}\operatorname{Var}[\hat g]
            = \nabla_\phi \mathbb{E}\,\lVert \hat g \rVert^2
            \approx \frac{1}{n} \sum_{i=1}^n \nabla_\phi \lVert \hat g_i \rVert^2,

    where :math:`\hat g_i` are the one-sample RELAX estimates (their mean is the returned
    gradient estimate). This is the gradient of the per-sample variance; the variance of the
    ``num_samples`` average is that divided by ``n``, with the same minimiser. The samples are
    the ones :func:`relax` draws with the same ``key``. Use it in an optax loop::

        value, g, g_phi = relax_variance_grad(f, theta, key, surrogate=c, surrogate_params=phi)
        updates, opt_state = opt.update(g_phi, opt_state)
        phi = optax.apply_updates(phi, updates)

    :param f: maps one discrete sample to a scalar.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key (the same key gives the samples of :func:`relax`).
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples :math:`n`.
    :param surrogate: the control variate ``c(params, z) -> scalar``.
    :param surrogate_params: its parameters :math:`\phi` (any pytree).
    :return: ``(value_estimate, grad_estimate, surrogate_params_grad)``; the last has the
        structure of ``surrogate_params``.

    **References:**

    1. *Backpropagation through the Void: Optimizing control variates for black-box gradient
       estimation*, Will Grathwohl et al. (ICLR 2018)
    """
    return _relax_impl(
        "relax_variance_grad",
        f,
        logits,
        key,
        family,
        num_samples,
        surrogate,
        surrogate_params,
        True,
    )


def _relax_impl(
    name: str,
    f: Callable,
    logits: ArrayLike,
    key: jax.Array,
    family: Any,
    num_samples: Any,
    surrogate: Any,
    surrogate_params: Any,
    with_variance_grad: bool,
) -> tuple[jax.Array, jax.Array, Any]:
    theta, n = _prepare(name, f, logits, family, num_samples)
    _relax_checks(name, surrogate, surrogate_params, theta)
    u, v = _cv_noise(key, n, theta)

    def estimates(params: Any) -> tuple[jax.Array, jax.Array]:
        def control(z: jax.Array) -> jax.Array:
            return surrogate(params, z)

        return jax.vmap(lambda u_i, v_i: _cv_sample(f, control, theta, u_i, v_i, family))(u, v)

    if not with_variance_grad:
        fs, grads = estimates(surrogate_params)
        return jnp.mean(fs), jnp.mean(grads, axis=0), None

    def second_moment(params: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        fs, grads = estimates(params)
        sq = jnp.mean(jnp.sum(grads.reshape(n, -1) ** 2, axis=-1))
        return sq, (fs, grads)

    (_, (fs, grads)), params_grad = jax.value_and_grad(second_moment, has_aux=True)(
        surrogate_params
    )
    return jnp.mean(fs), jnp.mean(grads, axis=0), params_grad


# --------------------------------------------------------------------------------------------
# pathwise (biased) estimators
# --------------------------------------------------------------------------------------------


def _pathwise(
    name: str,
    f: Callable,
    logits: ArrayLike,
    key: jax.Array,
    family: Any,
    num_samples: Any,
    temperature: ArrayLike,
    hard_forward: bool,
) -> tuple[jax.Array, jax.Array]:
    theta, n = _prepare(name, f, logits, family, num_samples)
    _check_positive(name, "temperature", temperature)

    def one(u: jax.Array) -> tuple[jax.Array, jax.Array]:
        def objective(t: jax.Array) -> tuple[jax.Array, jax.Array]:
            z = _perturb(t, u, family)
            soft = _soft(z, temperature, family)
            hard = lax.stop_gradient(_hard(z, family))
            if hard_forward:
                out = f(hard + (soft - lax.stop_gradient(soft)))
                return out, out
            return f(soft), f(hard)

        g, f_hard = jax.grad(objective, has_aux=True)(theta)
        return f_hard, g

    fs, grads = jax.vmap(one)(_noise(key, n, theta))
    return jnp.mean(fs), jnp.mean(grads, axis=0)


def gumbel_softmax(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 0.5,
) -> tuple[jax.Array, jax.Array]:
    r"""Gumbel-softmax / Concrete pathwise estimator (**biased**).

    .. math::

        \hat g = \frac{1}{n}\sum_{i=1}^n \nabla_\theta f\big(\sigma_\lambda(z_i(\theta))\big),

    the reparameterisation gradient of the *relaxed* objective
    :math:`\mathbb{E}[f(\sigma_\lambda(z))]`, not of :math:`\mathbb{E}[f(b)]`: the bias is the
    difference of the two gradients; it vanishes as :math:`\lambda \to 0` only while the
    variance grows like :math:`1/\lambda`. For example at :math:`\theta = 0` with
    :math:`f(b) = (b - 0.499)^2` the true gradient is :math:`5 \times 10^{-4}` while the estimator
    has mean :math:`0.002\,\mathbb{E}[\sigma_\lambda(z)(1 - \sigma_\lambda(z))] / \lambda`.
    ``f`` must accept relaxed inputs (the unit cube / the simplex). The value estimate averages
    :math:`f(b)` at the discrete samples :math:`b = H(z_i)` of the same noise (unbiased).

    :param f: maps one sample (shape of ``logits``) to a scalar, differentiable on the relaxed
        domain.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` (binary Concrete) or ``"categorical"`` (Gumbel-softmax).
    :param num_samples: number of samples.
    :param temperature: :math:`\lambda > 0`.
    :return: ``(value_estimate, grad_estimate)``.

    **References:**

    1. *Categorical Reparameterization with Gumbel-Softmax*, Eric Jang, Shixiang Gu, Ben Poole
       (ICLR 2017)
    2. *The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables*,
       Chris J. Maddison, Andriy Mnih, Yee Whye Teh (ICLR 2017)
    """
    return _pathwise(
        "gumbel_softmax", f, logits, key, family, num_samples, temperature, hard_forward=False
    )


def straight_through(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 0.5,
) -> tuple[jax.Array, jax.Array]:
    r"""Straight-through Gumbel-softmax estimator (**biased**).

    The forward pass evaluates ``f`` at the exact discrete sample :math:`b = H(z)`; the backward
    pass differentiates the relaxed sample:

    .. math::

        \hat g = \frac{1}{n}\sum_{i=1}^n \nabla f(b_i)^\top
            \frac{\partial \sigma_\lambda(z_i(\theta))}{\partial \theta},

    computed as ``f(b + (soft - stop_gradient(soft)))``. Biased for every :math:`\lambda`; at
    :math:`\theta = 0` with :math:`f(b) = (b - 0.499)^2` its mean is
    :math:`\mathbb{E}[2(b - 0.499)\,\sigma_\lambda(z)(1 - \sigma_\lambda(z))] / \lambda` instead
    of :math:`5 \times 10^{-4}`. ``f`` must be differentiable at the discrete points (it is
    given the gradient there). The value estimate averages :math:`f(b)` (unbiased).

    :param f: maps one sample (shape of ``logits``) to a scalar, differentiable.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples.
    :param temperature: temperature :math:`\lambda > 0` of the backward relaxation.
    :return: ``(value_estimate, grad_estimate)``.

    **References:**

    1. *Estimating or Propagating Gradients Through Stochastic Neurons for Conditional
       Computation*, Yoshua Bengio, Nicholas Léonard, Aaron Courville (2013)
    2. *Categorical Reparameterization with Gumbel-Softmax*, Eric Jang, Shixiang Gu, Ben Poole
       (ICLR 2017)
    """
    return _pathwise(
        "straight_through", f, logits, key, family, num_samples, temperature, hard_forward=True
    )


# the estimators of the core registry, one function each (numpyro_relax.infer.functional)
from numpyro_relax.infer.functional import (  # noqa: E402
    decoupled_st,
    gst,
    gumbel_rao,
    loo,
    reinmax,
    st,
    st_gumbel,
    vargrad,
)
from numpyro_relax.infer.unbiased import (  # noqa: E402
    disarm_categorical,
    double_cv,
    indecater,
)
