"""Extra constraints: one-hot vectors, the log-simplex and relaxed k-hot vectors."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import logsumexp
from numpyro.distributions import constraints
from numpyro.distributions.transforms import (
    ComposeTransform,
    ExpTransform,
    StickBreakingTransform,
    biject_to,
)

__all__ = ["relaxed_k_hot", "log_simplex", "one_hot"]


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


@biject_to.register(type(log_simplex))
def _transform_to_log_simplex(constraint):
    return ComposeTransform([StickBreakingTransform(), ExpTransform().inv])
