"""Exact KL divergences of the simplex family against Monte Carlo and dense Gaussian KLs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import random
from numpyro.distributions import MultivariateNormal, Normal, kl_divergence

import numpyro_relax.distributions.kl_simplex  # noqa: F401  (registers the KLs)
from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
)

N = 20_000


def _mc_kl(p, q, key):
    """Mean and standard error of log p(x) - log q(x), x ~ p (exact densities, intermediates)."""

    @jax.jit
    def run(p, q):
        x, inter = p.sample_with_intermediates(key, (N,))
        return p.log_prob(x, inter) - q.log_prob(x, inter)

    r = run(p, q)
    return jnp.mean(r, 0), jnp.std(r, 0) / np.sqrt(N)


def _assert_matches_mc(p, q, seed=0):
    kl = kl_divergence(p, q)
    mean, se = _mc_kl(p, q, random.PRNGKey(seed))
    assert kl.shape == mean.shape
    np.testing.assert_array_less(jnp.abs(kl - mean), 5 * se)
    return kl


LOC3 = jnp.array([[0.3, -1.0, 0.5], [1.0, 0.2, -0.4]])
SCALE3 = jnp.array([[0.5, 1.0, 0.8], [1.1, 0.6, 0.4]])


def test_igr_same_temperature_is_the_gaussian_kl():
    p = InvertibleGaussian(LOC3, SCALE3, jnp.array([0.5, 2.0]), jnp.array([1.0, 3.0]))
    q = InvertibleGaussian(
        LOC3[::-1] * 0.5, SCALE3[::-1], jnp.array([0.5, 2.0]), jnp.array([1.0, 3.0])
    )
    kl = _assert_matches_mc(p, q)
    gaussian = kl_divergence(Normal(LOC3, SCALE3), Normal(LOC3[::-1] * 0.5, SCALE3[::-1])).sum(-1)
    np.testing.assert_allclose(kl, gaussian, rtol=1e-5)


def test_igr_mismatched_temperature_and_delta_is_exact():
    """Different pushforwards, yet both laws are logistic-normal: the KL is still closed form."""
    p = InvertibleGaussian(LOC3, SCALE3, jnp.array([0.5, 1.0]), jnp.array([1.0, 2.0]))
    q = InvertibleGaussian(LOC3 * 0.5, SCALE3[::-1], jnp.array([0.8, 0.6]), jnp.array([0.5, 1.0]))
    kl = _assert_matches_mc(p, q, 1)
    # and it is not the Gaussian KL of (loc, scale), which ignores the temperatures
    gaussian = kl_divergence(Normal(LOC3, SCALE3), Normal(LOC3 * 0.5, SCALE3[::-1])).sum(-1)
    assert float(jnp.min(jnp.abs(kl - gaussian))) > 0.1


def test_logistic_normal_kl():
    tril_p = jnp.array([[0.9, 0.0, 0.0], [0.3, 0.7, 0.0], [-0.2, 0.1, 0.5]])
    tril_q = jnp.array([[[1.2, 0.0, 0.0], [0.0, 0.4, 0.0], [0.5, -0.3, 0.8]]] * 2)
    p = LogisticNormal(LOC3, tril_p)
    q = LogisticNormal(LOC3[::-1], tril_q)
    kl = _assert_matches_mc(p, q, 2)
    ref = kl_divergence(
        MultivariateNormal(LOC3, scale_tril=tril_p),
        MultivariateNormal(LOC3[::-1], scale_tril=tril_q),
    )
    np.testing.assert_allclose(kl, ref, rtol=1e-5)


def test_logistic_normal_softmax_kl_is_the_alr_gaussian_kl():
    loc_p = jnp.array([[0.3, -1.0, 2.0, 0.0], [0.5, 0.5, -0.5, 1.0]])
    scale_p = jnp.array([[0.5, 1.0, 0.7, 1.2], [0.3, 0.9, 1.5, 0.6]])
    loc_q = jnp.array([[0.0, 0.5, 1.0, -1.0], [1.0, -0.2, 0.0, 0.3]])
    scale_q = jnp.array([[1.0, 0.6, 0.9, 0.4], [0.8, 0.8, 0.5, 1.1]])
    p = LogisticNormalSoftmax(loc_p, scale_p)
    q = LogisticNormalSoftmax(loc_q, scale_q)
    kl = _assert_matches_mc(p, q, 3)

    def dense(loc, scale):  # the ALR Gaussian written out: diag + rank one
        s2 = scale**2
        cov = s2[:, :-1, None] * jnp.eye(3) + s2[:, -1, None, None]
        return MultivariateNormal(loc[:, :-1] - loc[:, -1:], covariance_matrix=cov)

    with jax.enable_x64(True):
        args = [jnp.asarray(a, jnp.float64) for a in (loc_p, scale_p, loc_q, scale_q)]
        kl64 = kl_divergence(LogisticNormalSoftmax(*args[:2]), LogisticNormalSoftmax(*args[2:]))
        np.testing.assert_allclose(
            kl64, kl_divergence(dense(*args[:2]), dense(*args[2:])), rtol=1e-10
        )
    # NOT the K-dimensional diagonal Normal KL: that one also counts the direction softmax drops
    k_dim = kl_divergence(Normal(loc_p, scale_p), Normal(loc_q, scale_q)).sum(-1)
    assert bool(jnp.all(k_dim > kl + 0.05))
    # invariant to shifting either loc by a constant (the law does not change)
    shifted = LogisticNormalSoftmax(loc_q + 5.0, scale_q)
    np.testing.assert_allclose(kl_divergence(p, shifted), kl, rtol=1e-5)


@pytest.mark.parametrize("pair", ["igr-lns", "lns-ln", "ln-igr"])
def test_mixed_pairs(pair):
    igr = InvertibleGaussian(LOC3, SCALE3, jnp.array([0.7, 1.3]), 2.0)
    lns = LogisticNormalSoftmax(
        jnp.array([[0.1, -0.4, 0.6, 0.0], [0.5, 0.0, -0.2, 0.1]]), jnp.array([0.6, 0.9, 0.5, 0.8])
    )
    tril = jnp.array([[0.9, 0.0, 0.0], [0.3, 0.7, 0.0], [-0.2, 0.1, 0.5]])
    ln = LogisticNormal(jnp.array([[0.2, 0.3, -0.1], [-0.5, 0.0, 0.4]]), tril)
    dists = {"igr": igr, "lns": lns, "ln": ln}
    a, b = pair.split("-")
    _assert_matches_mc(dists[a], dists[b], 4)


def test_kl_goes_through_expand_and_to_event_and_checks_events():
    p = LogisticNormalSoftmax(jnp.array([0.3, -1.0, 2.0]), jnp.array([0.5, 1.0, 0.7]))
    q = LogisticNormalSoftmax(jnp.zeros(3), jnp.ones(3))
    kl = kl_divergence(p, q)
    kl_ind = kl_divergence(p.expand((4,)).to_event(1), q.expand((4,)).to_event(1))
    np.testing.assert_allclose(kl_ind, 4 * kl, rtol=1e-5)
    with pytest.raises(ValueError, match="event shapes"):
        kl_divergence(p, LogisticNormalSoftmax(jnp.zeros(4), jnp.ones(4)))
    np.testing.assert_allclose(kl_divergence(p, p), 0.0, atol=1e-5)
