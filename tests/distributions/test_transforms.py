"""Softmax++ and ALR transforms: closed-form Jacobians against jax.jacfwd, inverses, stability."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import random
from numpyro.distributions import constraints

from numpyro_relax.distributions.transforms import (
    ALRTransform,
    SoftmaxPlusPlusTransform,
    additive_log_ratio,
    log_softmax_plus_plus,
    softmax_plus_plus,
)


@jax.jit
def _log_dets(y, delta):
    """Closed-form log|det J| of softmax++, and slogdet of its jacfwd Jacobian (first K-1 coords)."""
    t = SoftmaxPlusPlusTransform(delta)

    def one(v):
        x = t(v)
        sign, logdet = jnp.linalg.slogdet(jax.jacfwd(lambda u: t(u)[:-1])(v))
        return t.log_abs_det_jacobian(v, x), sign, logdet, jnp.sum(jnp.log(x))

    return jax.vmap(one)(y)


def test_softmax_plus_plus_log_det_matches_jacfwd():
    with jax.enable_x64(True):
        y = random.normal(random.PRNGKey(3), (5, 4), jnp.float64) * 2
        for delta in (1.0, 0.3, 7.0):
            closed, sign, logdet, sum_log_x = _log_dets(y, jnp.float64(delta))
            assert np.all(np.asarray(sign) > 0)
            np.testing.assert_allclose(closed, logdet, rtol=1e-10)
            # the closed form written out: prod_{k<=K} x_k
            np.testing.assert_allclose(logdet, sum_log_x, rtol=1e-10)


def test_softmax_plus_plus_definition_and_inverse():
    with jax.enable_x64(True):
        y = jnp.array([[0.5, -1.0, 2.0], [3.0, 0.0, -4.0]])
        delta = jnp.array([1.0, 2.5])
        x = softmax_plus_plus(y, delta)
        expected = np.exp(y) / (np.exp(y).sum(-1, keepdims=True) + np.asarray(delta)[:, None])
        np.testing.assert_allclose(x[..., :-1], expected, rtol=1e-12)
        np.testing.assert_allclose(x[..., -1], 1 - expected.sum(-1), rtol=1e-12)
        t = SoftmaxPlusPlusTransform(delta)
        np.testing.assert_allclose(t.inv(x), y, rtol=1e-12, atol=1e-12)
        assert t.forward_shape((2, 3)) == (2, 4) and t.inverse_shape((2, 4)) == (2, 3)
        assert bool(jnp.all(constraints.simplex(x)))


def test_alr_transform_is_inverse_of_softmax_plus_plus_with_delta_one():
    with jax.enable_x64(True):
        y = random.normal(random.PRNGKey(0), (6, 3), jnp.float64)
        x = SoftmaxPlusPlusTransform(1.0)(y)
        alr = ALRTransform()
        np.testing.assert_allclose(alr(x), y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(alr.inv(y), x, rtol=1e-12)

        # the ALR Jacobian: x_{1:K-1} -> y, log|det| = -sum_k log x_k, against jacfwd
        def one(xi):
            jac = jax.jacfwd(lambda v: additive_log_ratio(jnp.append(v, 1 - v.sum())))(xi[:-1])
            return alr.log_abs_det_jacobian(xi, alr(xi)), jnp.linalg.slogdet(jac)[1]

        closed, autodiff = jax.jit(jax.vmap(one))(x)
        np.testing.assert_allclose(closed, autodiff, rtol=1e-10)


def test_float32_low_temperature_has_no_overflow():
    # |y| ~ 30 / 0.01 = 3000: naive exp overflows in float32, the log-space form does not
    y = jnp.array([3000.0, -3000.0, 2999.0], jnp.float32)
    log_x = log_softmax_plus_plus(y, 1.0)
    x = jnp.exp(log_x)
    assert bool(jnp.all(jnp.isfinite(log_x))) and bool(jnp.all(jnp.isfinite(x)))
    np.testing.assert_allclose(jnp.sum(x), 1.0, rtol=1e-6)
    np.testing.assert_allclose(log_x[0], -jnp.log1p(jnp.exp(-1.0)), rtol=1e-6)
    g = jax.grad(lambda v: log_softmax_plus_plus(v, 2.0)[1])(y)
    assert bool(jnp.all(jnp.isfinite(g)))
    assert not bool(jnp.all(jnp.isfinite(jnp.exp(y[0]))))  # the naive form would overflow


def test_transforms_are_pytrees():
    t = SoftmaxPlusPlusTransform(jnp.array([1.0, 2.0]))
    leaves, tree = jax.tree_util.tree_flatten(t)
    t2 = jax.tree_util.tree_unflatten(tree, leaves)
    y = jnp.ones((2, 3))
    np.testing.assert_allclose(t2(y), t(y))
    out = jax.jit(lambda tt, v: tt(v))(t, y)
    np.testing.assert_allclose(out, t(y), rtol=1e-6)
    assert bool(t.eq(SoftmaxPlusPlusTransform(jnp.array([1.0, 2.0]))))
    assert not bool(t.eq(SoftmaxPlusPlusTransform(jnp.array([1.0, 3.0]))))
    assert SoftmaxPlusPlusTransform(2.0) == SoftmaxPlusPlusTransform(2.0)
    assert SoftmaxPlusPlusTransform(2.0) != SoftmaxPlusPlusTransform(1.0)
    assert ALRTransform() == ALRTransform()
