"""Extra constraints: one-hot vectors, the log-simplex, relaxed k-hot vectors and correlation
matrices (checked by one compiled Cholesky-based call)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.transforms import (
    ComposeTransform,
    ExpTransform,
    StickBreakingTransform,
    biject_to,
)

__all__ = ["correlation_matrix", "relaxed_k_hot", "log_simplex", "one_hot"]


class _OneHot(constraints._SingletonConstraint):
    """Vectors with a single 1 and zeros elsewhere (the vertices of the simplex)."""

    is_discrete = True
    event_dim = 1

    def __call__(self, x):
        return ((x == 0) | (x == 1)).all(axis=-1) & (x.sum(axis=-1) == 1)

    def feasible_like(self, prototype):
        return jnp.zeros_like(prototype).at[..., 0].set(1)


class _LogSimplex(constraints._SingletonConstraint):
    """Vectors ``y`` with ``logsumexp(y) = 0``: the logs of points of the simplex."""

    event_dim = 1

    def __call__(self, x):
        return jnp.abs(logsumexp(x, axis=-1)) < 1e-5

    def feasible_like(self, prototype):
        return jnp.full_like(prototype, -jnp.log(prototype.shape[-1]))


class _RelaxedKHot(constraints.Constraint):
    """Non-negative vectors summing to ``k``: the k-hot vectors and their relaxations.

    The successive-softmax relaxation of a k-subset keeps the sum exactly ``k`` but, at high
    temperature, an entry can exceed 1, so the set is the scaled simplex, not the k-hot polytope.
    """

    event_dim = 1

    def __init__(self, k: int):
        self.k = k
        super().__init__()

    def __call__(self, x):
        s = x.sum(axis=-1)
        tol = 1e-5 * max(self.k, 1)
        return (x >= 0).all(axis=-1) & (jnp.abs(s - self.k) < tol)

    def feasible_like(self, prototype):
        return jnp.full_like(prototype, self.k / prototype.shape[-1])

    def tree_flatten(self):
        return (), ((), {"k": self.k})

    def eq(self, other, static=False):
        return isinstance(other, _RelaxedKHot) and other.k == self.k

    def __repr__(self):
        return f"RelaxedKHot(k={self.k})"


one_hot = _OneHot()
log_simplex = _LogSimplex()
relaxed_k_hot = _RelaxedKHot


@biject_to.register(_RelaxedKHot)
def _transform_to_relaxed_k_hot(constraint: _RelaxedKHot) -> Any:
    raise NotImplementedError(
        f"{constraint!r} has no bijection from unconstrained space: the one distribution on it, "
        "GumbelSoftmaxTopK, has a log_prob only at hard k-hot values (the pmf of the k-subset; "
        "a relaxed value has no closed-form density), so a continuous guide mapped onto this "
        "support could not be scored against it. Guide a k-subset site with a GumbelSoftmaxTopK "
        "(TraceMeanField_ELBO with the registered discrete KL) or with TraceDiscrete_ELBO."
    )


@biject_to.register(type(log_simplex))
def _transform_to_log_simplex(constraint):
    return ComposeTransform([StickBreakingTransform(), ExpTransform().inv])


@jax.jit
def is_correlation_matrix(correlation: jax.Array) -> jax.Array:
    """Per matrix: symmetric, unit diagonal and positive definite (a finite Cholesky factor)."""
    tol = 1e3 * jnp.finfo(correlation.dtype).eps
    sym = jnp.all(
        jnp.isclose(correlation, jnp.swapaxes(correlation, -1, -2), atol=tol), axis=(-2, -1)
    )
    diag = jnp.all(jnp.abs(jnp.diagonal(correlation, axis1=-2, axis2=-1) - 1.0) <= tol, axis=-1)
    chol_diag = jnp.diagonal(jnp.linalg.cholesky(correlation), axis1=-2, axis2=-1)
    pd = jnp.all(jnp.isfinite(chol_diag) & (chol_diag > 0), axis=-1)
    return sym & diag & pd


class _CorrelationMatrix(type(constraints.corr_matrix)):
    """NumPyro's ``corr_matrix`` constraint, checked by one compiled call (Cholesky-based)."""

    def __call__(self, x: ArrayLike) -> jax.Array:
        return is_correlation_matrix(jnp.asarray(x))


correlation_matrix = _CorrelationMatrix()


@biject_to.register(_CorrelationMatrix)
def _transform_to_correlation_matrix(constraint: _CorrelationMatrix) -> Any:
    return biject_to(constraints.corr_matrix)
