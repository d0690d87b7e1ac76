r"""Pathwise surrogates beyond plain straight-through: ReinMax, Gapped Straight-Through and
Gumbel-Rao.

Each function here is the ``relax(logits, key, family, **options) -> value`` of an
:class:`~numpyro_relax.infer.core.EstimatorSpec`: the forward value is an *exact* sample of the
discrete law (bits for ``family="bernoulli"``, one-hot vectors for ``family="onehot"``) and the
backward pass is the estimator's surrogate, written as ``hard + (soft - stop_gradient(soft))``
with a ``soft`` whose Jacobian is the estimator's. One evaluation of the downstream function per
sample, and biased (see each function's docstring for what the bias is).

Bits are the two-category case: logits :math:`(0, \theta)`, value the second entry, so that the
same formula serves both families.

This module imports nothing from :mod:`numpyro_relax.infer.core` (the core imports it to build
its registry).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax, random
from jax.typing import ArrayLike

from numpyro_relax.distributions.util import one_hot_argmax, straight_through, uniform
from numpyro_relax.infer.checks import _check_positive, _is_concrete, check_count

__all__ = ["gst_logits", "gst_surrogate", "reinmax_surrogate"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _as_pair(logits: jax.Array) -> jax.Array:
    """Bits as two categories: logits ``(...)`` -> ``(..., 2)`` with entries ``(0, theta)``."""
    return jnp.stack([jnp.zeros_like(logits), logits], axis=-1)


def _sample_onehot(logits: jax.Array, key: jax.Array) -> jax.Array:
    """An exact one-hot sample of ``softmax(logits)`` (Gumbel-max), no gradient."""
    g = random.gumbel(key, logits.shape, logits.dtype)
    return one_hot_argmax(lax.stop_gradient(logits) + g)


def _check_at_least_one(name: str, arg: str, value: Any) -> None:
    if _is_concrete(value) and not np.all(np.asarray(value, dtype=float) >= 1.0):
        raise ValueError(
            f"{name}: `{arg}` must be >= 1, got {value!r} (ReinMax's second-order correction "
            "assumes it; the authors' implementation refuses a temperature below 1)."
        )


def _on_pairs(relax_onehot: Any, logits: jax.Array, key: jax.Array, family: str, **kw: Any):
    """Run a one-hot surrogate on bits through their two-category form."""
    if family == "bernoulli":
        return relax_onehot(_as_pair(logits), key, **kw)[..., 1]
    return relax_onehot(logits, key, **kw)


# --------------------------------------------------------------------------------------------
# ReinMax
# --------------------------------------------------------------------------------------------


def reinmax_surrogate(logits: jax.Array, hard: jax.Array, temperature: ArrayLike) -> jax.Array:
    r"""The ReinMax value for a given one-hot sample ``hard`` (:math:`D`): forward :math:`D`,
    backward

    .. math::

        \frac{\partial}{\partial\theta} \approx 2\,A(\pi_{1/2}) - \tfrac12\,A(\pi),\qquad
        \pi = \mathrm{softmax}(\theta),\quad
        \pi_{1/2} = \tfrac12\big(\mathrm{softmax}(\theta/\tau) + D\big),

    with :math:`A(p) = \mathrm{diag}(p) - p p^\top` (the softmax Jacobian at probabilities
    :math:`p`) and :math:`\pi_{1/2}` held constant. :math:`A(\pi_{1/2})\theta` is linear in
    :math:`\theta` with Jacobian :math:`A(\pi_{1/2})`, so ``soft`` below has exactly this
    Jacobian; no custom derivative rule is needed.
    """
    pi_half = lax.stop_gradient(
        0.5 * (jax.nn.softmax(logits / temperature, axis=-1) + hard.astype(logits.dtype))
    )
    linear = pi_half * logits - pi_half * jnp.sum(pi_half * logits, axis=-1, keepdims=True)
    soft = 2.0 * linear - 0.5 * jax.nn.softmax(logits, axis=-1)
    return straight_through(hard.astype(logits.dtype), soft)


def _reinmax_onehot(logits: jax.Array, key: jax.Array, temperature: ArrayLike) -> jax.Array:
    return reinmax_surrogate(logits, _sample_onehot(logits, key), temperature)


def _reinmax(logits: jax.Array, key: jax.Array, family: str, temperature: ArrayLike) -> jax.Array:
    r"""ReinMax (Liu et al., NeurIPS 2023, arXiv:2304.08612): straight-through corrected to
    second order by Heun's method; forward an exact sample :math:`D \sim \mathrm{softmax}(\theta)`,
    backward :func:`reinmax_surrogate`. ``temperature`` :math:`\tau \geq 1` (a ``ValueError``
    otherwise, when it is concrete)."""
    _check_at_least_one("reinmax", "temperature", temperature)
    return _on_pairs(_reinmax_onehot, logits, key, family, temperature=temperature)


# --------------------------------------------------------------------------------------------
# Gapped Straight-Through
# --------------------------------------------------------------------------------------------


def gst_surrogate(
    logits: jax.Array,
    hard: jax.Array,
    temperature: ArrayLike,
    gap: ArrayLike = 1.0,
    adaptive: bool = False,
) -> jax.Array:
    r"""The Gapped Straight-Through value for a given one-hot sample ``hard`` (:math:`D`, index
    :math:`i`): forward :math:`D`, backward through :math:`\mathrm{softmax}(\tilde\theta/\tau)`
    with the deterministically moved logits

    .. math::

        \tilde\theta = \theta + \mathrm{sg}(m_1 - m_2),\qquad
        m_1 = (\max_j\theta_j - \theta_i)\,D,\qquad
        m_{2,j} = (1 - D_j)\,\max(0,\ \theta_j - \max_k\theta_k + \kappa),

    so that the sampled category carries the largest moved logit and every other one lies at
    least the gap :math:`\kappa` below it (:math:`\partial\tilde\theta/\partial\theta = I`).
    ``adaptive=True`` uses the paper's probability-dependent gap
    :math:`\kappa = -\log(1 - \pi_i)/\pi_i` with :math:`\pi_i` the sampled category's
    probability (times :math:`1 - 10^{-5}`, as the authors' code does, so that it stays finite).
    """
    hard = hard.astype(logits.dtype)
    moved = gst_logits(logits, hard, gap, adaptive)
    return straight_through(hard, jax.nn.softmax(moved / temperature, axis=-1))


def gst_logits(
    logits: jax.Array, hard: jax.Array, gap: ArrayLike = 1.0, adaptive: bool = False
) -> jax.Array:
    r"""The moved logits :math:`\tilde\theta` of :func:`gst_surrogate` (Jacobian the identity)."""
    hard = hard.astype(logits.dtype)
    theta = lax.stop_gradient(logits)
    top = jnp.max(theta, axis=-1, keepdims=True)
    if adaptive:
        pi = jnp.sum(hard * jax.nn.softmax(theta, axis=-1), axis=-1, keepdims=True)
        pi = pi * (1.0 - 1e-5)
        gap = -jnp.log1p(-pi) / pi
    move_up = (top - theta) * hard
    move_down = (1.0 - hard) * jnp.maximum(theta - top + gap, 0.0)
    return logits + lax.stop_gradient(move_up - move_down)


def _gst_onehot(
    logits: jax.Array, key: jax.Array, temperature: ArrayLike, gap: ArrayLike, adaptive: bool
) -> jax.Array:
    return gst_surrogate(logits, _sample_onehot(logits, key), temperature, gap, adaptive)


def _gst(
    logits: jax.Array,
    key: jax.Array,
    family: str,
    temperature: ArrayLike,
    gap: ArrayLike,
    adaptive: bool,
) -> jax.Array:
    r"""Gapped Straight-Through (Fan et al., ICML 2022): forward an exact sample, backward
    :func:`gst_surrogate` (fixed gap :math:`\kappa` = ``gap``, or the adaptive gap)."""
    _check_positive("gst", "temperature", temperature)
    _check_positive("gst", "gap", gap)
    if adaptive not in (True, False):
        raise ValueError(f"gst: `adaptive` must be True or False, got {adaptive!r}.")
    return _on_pairs(
        _gst_onehot, logits, key, family, temperature=temperature, gap=gap, adaptive=adaptive
    )


# --------------------------------------------------------------------------------------------
# Gumbel-Rao
# --------------------------------------------------------------------------------------------


def _check_num_conditionals(value: Any) -> int:
    return check_count("gumbel-rao", "num_conditionals", value, 1)


def _gumbel_rao(
    logits: jax.Array,
    key: jax.Array,
    family: str,
    temperature: ArrayLike,
    num_conditionals: int,
) -> jax.Array:
    r"""Gumbel-Rao (Paulus, Maddison & Krause, ICLR 2021): straight-through Gumbel-softmax
    Rao-Blackwellised over the noise given the sample. Forward :math:`D = H(\theta + G)`;
    backward through

    .. math::

        \frac1M\sum_{m=1}^M \mathrm{softmax}\big((\theta + \mathrm{sg}(G_m))/\tau\big),\qquad
        G_m \sim G \mid D \ \text{independently},

    so its expectation given :math:`D` is that of ST Gumbel-softmax: the same mean gradient, with
    less variance (logistic noise and a sigmoid for bits). The conditional noise is the one
    REBAR and RELAX use (:func:`numpyro_relax.estimators` ``_conditional``).
    """
    # imported here: numpyro_relax.estimators imports the core, which imports this module
    from numpyro_relax.infer.relaxation import _conditional

    _check_positive("gumbel-rao", "temperature", temperature)
    m = _check_num_conditionals(num_conditionals)
    key_sample, key_cond = random.split(key)
    theta = lax.stop_gradient(logits)
    u = uniform(key_sample, logits.shape, logits.dtype)
    v = uniform(key_cond, (m,) + logits.shape, logits.dtype)
    if family == "bernoulli":
        hard = (theta + (jnp.log(u) - jnp.log1p(-u)) > 0).astype(logits.dtype)
        noise = _conditional(theta, v, hard, "bernoulli") - theta
        soft = jnp.mean(jax.nn.sigmoid((logits + noise) / temperature), axis=0)
    else:
        hard = one_hot_argmax(theta - jnp.log(-jnp.log(u)))
        noise = _conditional(theta, v, hard, "categorical") - jax.nn.log_softmax(theta, axis=-1)
        soft = jnp.mean(jax.nn.softmax((logits + noise) / temperature, axis=-1), axis=0)
    return straight_through(hard, soft)
