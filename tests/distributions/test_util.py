"""Tests of numpyro_relax.distributions.util helpers with numerics of their own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_relax.distributions.util import log1mexp, tril_mahalanobis


def _log1mexp_reference(x: np.ndarray) -> np.ndarray:
    """float64 reference: log(-expm1(x)) near 0; the series -sum_n e^(nx)/n for x < -1, where
    80 terms leave an error below e^(-80) relative to the first."""
    x = np.asarray(x, np.float64)
    n = np.arange(1, 81)[:, None]
    series = -np.sum(np.exp(n * np.minimum(x, -1.0)) / n, axis=0)
    return np.where(x < -1.0, series, np.log(-np.expm1(np.minimum(x, -1e-300))))


X32 = -np.concatenate([np.logspace(-7, 1.9, 400), [0.69, 0.6931472, 0.7]]).astype(np.float32)


def test_log1mexp_value_float32():
    got = np.asarray(log1mexp(jnp.asarray(X32)), np.float64)
    np.testing.assert_allclose(got, _log1mexp_reference(X32), rtol=4e-7)


def test_log1mexp_gradient_float32():
    """d/dx log(1 - e^x) = -1 / expm1(-x), relative to float32 rounding."""
    got = np.asarray(jax.vmap(jax.grad(log1mexp))(jnp.asarray(X32)), np.float64)
    want = -1.0 / np.expm1(-X32.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=2e-6)


def test_log1mexp_finite_at_zero_and_second_derivative():
    x = jnp.array([0.0, -1e-30, -0.5, -30.0, -100.0])
    assert np.all(np.isfinite(log1mexp(x)))
    grads = jax.vmap(jax.grad(log1mexp))(x)
    assert np.all(np.isfinite(grads)) and grads[0] == 0.0  # the clamp at x = 0
    second = np.asarray(jax.vmap(jax.grad(jax.grad(log1mexp)))(x[2:]), np.float64)
    # d2/dx2 log(1 - e^x) = -e^x / (1 - e^x)^2
    xs = np.asarray(x[2:], np.float64)
    np.testing.assert_allclose(second, -np.exp(xs) / (-np.expm1(xs)) ** 2, rtol=1e-5, atol=1e-40)


@pytest.mark.parametrize(
    "tril_batch, v_batch",
    [
        ((), (5,)),
        ((2,), (5, 2)),
        ((2, 1), (2, 4)),
        ((1,), (7,)),
        ((2,), ()),
        ((3, 1, 2), (4, 1, 1, 2)),
    ],
)
def test_tril_mahalanobis_against_dense_solves(tril_batch, v_batch):
    """Every broadcasting pattern of factor and vectors (shared axes become columns of one
    solve) against a float64 solve with both broadcast to the full batch."""
    n = 3
    rng = np.random.default_rng(0)
    tril = np.tril(rng.normal(size=tril_batch + (n, n)), -1) + np.diag(rng.uniform(0.5, 2.0, n))
    v = rng.normal(size=v_batch + (n,))
    batch = np.broadcast_shapes(tril_batch, v_batch)
    dense = np.linalg.solve(
        np.broadcast_to(tril, batch + (n, n)), np.broadcast_to(v, batch + (n,))[..., None]
    )
    out = tril_mahalanobis(jnp.asarray(tril, jnp.float32), jnp.asarray(v, jnp.float32))
    assert out.shape == batch
    np.testing.assert_allclose(out, np.sum(dense[..., 0] ** 2, -1), rtol=1e-5)
