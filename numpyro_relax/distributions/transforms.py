r"""Transforms onto the simplex: softmax++ (IGR) and the additive log-ratio (ALR).

Both are bijections between :math:`\mathbb{R}^{K-1}` and the open simplex in :math:`\mathbb{R}^K`
(a point is written with all ``K`` coordinates; densities are with respect to Lebesgue measure on
the first ``K-1``). Softmax++ with :math:`\delta = 1` is the inverse of the ALR map:

.. math::
    \operatorname{softmax}_{++}(y)_k = \frac{e^{y_k}}{\sum_{j<K} e^{y_j} + \delta}\ (k < K), \qquad
    x_K = 1 - \sum_{k<K} x_k = \frac{\delta}{\sum_{j<K} e^{y_j} + \delta},

.. math::
    \operatorname{alr}(x)_k = \log x_k - \log x_K \quad (k < K).

The Jacobian of :math:`y \mapsto x_{1:K-1}` is :math:`\operatorname{diag}(x) - x x^\top`
(:math:`x` restricted to its first ``K-1`` entries), whose determinant is
:math:`\prod_{k<K} x_k \,(1 - \sum_{k<K} x_k) = \prod_{k=1}^{K} x_k` by the matrix determinant
lemma; hence :math:`\log|\det J| = \sum_{k=1}^K \log x_k` for softmax++ (any :math:`\delta`) and
its negative for the ALR map.

Everything is computed in log space: :math:`\log x = \operatorname{log\_softmax}([y, \log\delta])`
(the max-shift of ``logsumexp`` keeps float32 finite for :math:`|y|` in the thousands, i.e. low
temperatures), and the residual :math:`x_K` is :math:`\exp(\log x_K)`, equal to
:math:`1 - \sum_{k<K} x_k` but accurate when it is tiny.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.transforms import ParameterFreeTransform, Transform
from numpyro.distributions.util import array_equiv

__all__ = [
    "ALRTransform",
    "SoftmaxPlusPlusTransform",
    "additive_log_ratio",
    "log_softmax_plus_plus",
    "softmax_plus_plus",
]


def _pad_last(y: jax.Array, value: ArrayLike) -> jax.Array:
    """Append ``value`` (broadcast to the batch shape of ``y``) as a last entry of ``y``."""
    value = jnp.broadcast_to(jnp.asarray(value, dtype=y.dtype), jnp.shape(y)[:-1])
    return jnp.concatenate([y, value[..., None]], axis=-1)


def log_softmax_plus_plus(y: ArrayLike, delta: ArrayLike = 1.0) -> jax.Array:
    r"""Logs of the ``K`` coordinates of :math:`\operatorname{softmax}_{++}(y)`, shape ``(..., K)``.

    :math:`\operatorname{log\_softmax}([y_1, \dots, y_{K-1}, \log\delta])`; ``delta`` broadcasts
    against the batch shape ``y.shape[:-1]``.
    """
    y = jnp.asarray(y)
    log_delta = jnp.log(jnp.asarray(delta, dtype=jnp.result_type(y, float)))
    return jax.nn.log_softmax(_pad_last(y, log_delta), axis=-1)


def softmax_plus_plus(y: ArrayLike, delta: ArrayLike = 1.0) -> jax.Array:
    """Softmax++ of ``y`` (``K-1`` entries) with the residual appended: a point of the simplex."""
    return jnp.exp(log_softmax_plus_plus(y, delta))


def additive_log_ratio(x: ArrayLike, log_x: ArrayLike | None = None) -> jax.Array:
    r"""The ALR coordinates :math:`\log x_k - \log x_K` (``K-1`` entries) of a simplex point.

    ``log_x`` (the logs of ``x``, e.g. a sample's intermediate) is used when given, so that
    coordinates that round to 0 in ``x`` keep their exact logs.
    """
    log_x = jnp.log(x) if log_x is None else jnp.asarray(log_x)
    return log_x[..., :-1] - log_x[..., -1:]


class SoftmaxPlusPlusTransform(Transform):
    r"""Softmax++ of Potapczynski et al. (2020): :math:`\mathbb{R}^{K-1} \to` the ``K``-simplex.

    .. math::
        x_{1:K-1} = \frac{e^{y}}{\sum_j e^{y_j} + \delta}, \qquad x_K = 1 - \sum_{k<K} x_k,
        \qquad \log|\det J| = \sum_{k=1}^K \log x_k.

    :param delta: positive constant :math:`\delta` (broadcast against the batch shape).

    **References:**

    1. *Invertible Gaussian Reparameterization: Revisiting the Gumbel-Softmax*,
       A. Potapczynski, G. Loaiza-Ganem, J. P. Cunningham (NeurIPS 2020).
    """

    domain = constraints.real_vector
    codomain = constraints.simplex

    def __init__(self, delta: ArrayLike = 1.0) -> None:
        self.delta = delta

    def __call__(self, x: ArrayLike) -> jax.Array:
        return softmax_plus_plus(x, self.delta)

    def call_with_intermediates(self, x: ArrayLike) -> tuple[jax.Array, jax.Array]:
        log_y = log_softmax_plus_plus(x, self.delta)
        return jnp.exp(log_y), log_y

    def _inverse(self, y: ArrayLike) -> jax.Array:
        delta = jnp.asarray(self.delta, dtype=jnp.result_type(y, float))
        return additive_log_ratio(y) + jnp.log(delta)[..., None]

    def log_abs_det_jacobian(
        self, x: ArrayLike, y: ArrayLike, intermediates: jax.Array | None = None
    ) -> jax.Array:
        log_y = intermediates if intermediates is not None else jnp.log(y)
        return jnp.sum(log_y, axis=-1)

    def forward_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) < 1:
            raise ValueError("SoftmaxPlusPlusTransform: too few dimensions on input")
        return shape[:-1] + (shape[-1] + 1,)

    def inverse_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) < 1:
            raise ValueError("SoftmaxPlusPlusTransform: too few dimensions on input")
        return shape[:-1] + (shape[-1] - 1,)

    def tree_flatten(self):
        return (self.delta,), (("delta",), {})

    def eq(self, other: object, static: bool = False) -> ArrayLike:
        if not isinstance(other, SoftmaxPlusPlusTransform):
            return False
        return array_equiv(self.delta, other.delta, static=static)


class ALRTransform(ParameterFreeTransform):
    r"""The additive log-ratio map of Aitchison: the ``K``-simplex :math:`\to \mathbb{R}^{K-1}`.

    :math:`y_k = \log(x_k / x_K)`; the inverse is :math:`\operatorname{softmax}([y, 0])`
    (softmax++ with :math:`\delta = 1`) and :math:`\log|\det J| = -\sum_{k=1}^K \log x_k`.
    ``ALRTransform().inv`` maps ALR coordinates onto the simplex.

    **References:**

    1. *The Statistical Analysis of Compositional Data*, J. Aitchison (Chapman & Hall, 1986).
    """

    domain = constraints.simplex
    codomain = constraints.real_vector

    def __call__(self, x: ArrayLike) -> jax.Array:
        return additive_log_ratio(x)

    def _inverse(self, y: ArrayLike) -> jax.Array:
        return softmax_plus_plus(y, 1.0)

    def log_abs_det_jacobian(
        self, x: ArrayLike, y: ArrayLike, intermediates: None = None
    ) -> jax.Array:
        return -jnp.sum(jnp.log(x), axis=-1)

    def forward_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) < 1:
            raise ValueError("ALRTransform: too few dimensions on input")
        return shape[:-1] + (shape[-1] - 1,)

    def inverse_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) < 1:
            raise ValueError("ALRTransform: too few dimensions on input")
        return shape[:-1] + (shape[-1] + 1,)

    def eq(self, other: object, static: bool = False) -> ArrayLike:
        return isinstance(other, ALRTransform)
