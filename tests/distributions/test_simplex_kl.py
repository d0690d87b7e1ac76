"""Exact KL divergences of the simplex family against Monte Carlo and dense Gaussian KLs."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from jax import random
from numpyro.distributions import MultivariateNormal, Normal, kl_divergence
from numpyro.infer import TraceMeanField_ELBO

import numpyro_relax.distributions.kl_simplex  # noqa: F401  (registers the KLs)
from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
)

N = 20_000


_kl = jax.jit(lambda p, q: kl_divergence(p, q))


@jax.jit
def _kl_and_mc(p, q, key):
    """The registered KL, and the mean and standard error of log p(x) - log q(x), x ~ p."""
    x, inter = p.sample_with_intermediates(key, (N,))
    r = p.log_prob(x, inter) - q.log_prob(x, inter)
    return kl_divergence(p, q), jnp.mean(r, 0), jnp.std(r, 0) / np.sqrt(N)


def _assert_matches_mc(p, q, seed=0):
    kl, mean, se = _kl_and_mc(p, q, random.PRNGKey(seed))
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
    gaussian = _kl(Normal(LOC3, SCALE3), Normal(LOC3[::-1] * 0.5, SCALE3[::-1])).sum(-1)
    np.testing.assert_allclose(kl, gaussian, rtol=1e-5)


def test_igr_mismatched_temperature_and_delta_is_exact():
    """Different pushforwards, yet both laws are logistic-normal: the KL is still closed form."""
    p = InvertibleGaussian(LOC3, SCALE3, jnp.array([0.5, 1.0]), jnp.array([1.0, 2.0]))
    q = InvertibleGaussian(LOC3 * 0.5, SCALE3[::-1], jnp.array([0.8, 0.6]), jnp.array([0.5, 1.0]))
    kl = _assert_matches_mc(p, q, 1)
    # and it is not the Gaussian KL of (loc, scale), which ignores the temperatures
    gaussian = _kl(Normal(LOC3, SCALE3), Normal(LOC3 * 0.5, SCALE3[::-1])).sum(-1)
    assert float(jnp.min(jnp.abs(kl - gaussian))) > 0.1


def test_logistic_normal_kl():
    tril_p = jnp.array([[0.9, 0.0, 0.0], [0.3, 0.7, 0.0], [-0.2, 0.1, 0.5]])
    tril_q = jnp.array([[[1.2, 0.0, 0.0], [0.0, 0.4, 0.0], [0.5, -0.3, 0.8]]] * 2)
    p = LogisticNormal(LOC3, tril_p)
    q = LogisticNormal(LOC3[::-1], tril_q)
    kl = _assert_matches_mc(p, q, 2)
    ref = _kl(
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

    @jax.jit
    def references(loc_p, scale_p, loc_q, scale_q):
        lns_p = LogisticNormalSoftmax(loc_p, scale_p)
        return (
            kl_divergence(lns_p, LogisticNormalSoftmax(loc_q, scale_q)),
            kl_divergence(dense(loc_p, scale_p), dense(loc_q, scale_q)),
            kl_divergence(Normal(loc_p, scale_p), Normal(loc_q, scale_q)).sum(-1),
            # invariant to shifting either loc by a constant (the law does not change)
            kl_divergence(lns_p, LogisticNormalSoftmax(loc_q + 5.0, scale_q)),
        )

    with jax.enable_x64(True):
        args = [jnp.asarray(a, jnp.float64) for a in (loc_p, scale_p, loc_q, scale_q)]
        kl64, dense64, k_dim, shifted = references(*args)
        np.testing.assert_allclose(kl64, dense64, rtol=1e-10)
        np.testing.assert_allclose(shifted, kl64, rtol=1e-10)
        np.testing.assert_allclose(kl, kl64, rtol=1e-5)
        # NOT the K-dimensional diagonal Normal KL: it also counts the direction softmax drops
        assert np.all(np.asarray(k_dim) > np.asarray(kl64) + 0.05)


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
    kl = _kl(p, q)
    kl_ind = _kl(p.expand((4,)).to_event(1), q.expand((4,)).to_event(1))
    np.testing.assert_allclose(kl_ind, 4 * kl, rtol=1e-5)
    with pytest.raises(ValueError, match="event shapes"):
        _kl(p, LogisticNormalSoftmax(jnp.zeros(4), jnp.ones(4)))
    np.testing.assert_allclose(_kl(p, p), 0.0, atol=1e-5)


def test_trace_mean_field_elbo_uses_the_exact_kl():
    """With no observations the mean-field ELBO loss is exactly KL(q || p): no sampling noise."""
    q = InvertibleGaussian(LOC3, SCALE3, jnp.array([0.5, 0.9]), 2.0)
    p = InvertibleGaussian(jnp.zeros(3), jnp.ones(3), jnp.array([0.7, 0.7]), 1.0)

    def model():
        numpyro.sample("z", p.to_event(1))

    def guide():
        numpyro.sample("z", q.to_event(1))

    loss = jax.jit(lambda k: TraceMeanField_ELBO().loss(k, {}, model, guide))
    np.testing.assert_allclose(loss(random.PRNGKey(0)), jnp.sum(_kl(q, p)), rtol=1e-5)
    np.testing.assert_allclose(loss(random.PRNGKey(1)), loss(random.PRNGKey(0)), rtol=1e-6)


def _compiled_bytes(f, *args):
    """Temporaries plus outputs of ``jit(f)`` by XLA's memory analysis (compiled, not run)."""
    m = jax.jit(f).lower(*args).compile().memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes


def _dense_gaussian_kl(loc_p, tril_p, loc_q, tril_q):
    """The multivariate Normal KL in float64 NumPy, one pair of (loc, factor) at a time."""
    cov_p, cov_q = tril_p @ tril_p.T, tril_q @ tril_q.T
    d = loc_q - loc_p
    prec_q = np.linalg.inv(cov_q)
    _, logdet_p = np.linalg.slogdet(cov_p)
    _, logdet_q = np.linalg.slogdet(cov_q)
    return 0.5 * (np.trace(prec_q @ cov_p) + d @ prec_q @ d - len(d) + logdet_q - logdet_p)


@pytest.mark.parametrize("batched_p", [False, True])
def test_logistic_normal_kl_does_not_copy_a_shared_factor_per_batch_element(batched_p):
    """Locations batched over B with one shared ``scale_tril`` on the q side: the memory of
    the KL grows like B x K (the locations), not B x K^2 (a factor per batch element)."""
    n = 128
    rng = np.random.default_rng(1)

    def factor(*batch):
        a = np.tril(rng.normal(size=batch + (n, n)) * 0.1 / np.sqrt(n), -1)
        return jnp.asarray(a + np.diag(rng.uniform(0.5, 1.5, n)), jnp.float32)

    tril_p = factor(2) if batched_p else factor()
    tril_q = factor()

    def kl(loc_p, tril_p, loc_q, tril_q):
        return kl_divergence(LogisticNormal(loc_p, tril_p), LogisticNormal(loc_q, tril_q))

    def locs(b):
        shape = (b, 2, n) if batched_p else (b, n)
        return jnp.asarray(rng.normal(size=shape), jnp.float32), jnp.zeros(shape)

    vector = 256 * 2 * n * 4  # one float32 (256, 2, K - 1) array
    factors = 2 * n * n * 4
    small = _compiled_bytes(kl, locs(256)[0], tril_p, locs(256)[1], tril_q)
    large = _compiled_bytes(kl, locs(512)[0], tril_p, locs(512)[1], tril_q)
    # before: both factors broadcast to the batch, (large - small) > 256 * factors
    assert large - small <= 8 * vector
    assert small <= 8 * vector + 8 * factors
    loc_p, loc_q = locs(3)
    loc_q = loc_q + 0.3
    out = np.asarray(jax.jit(kl)(loc_p, tril_p, loc_q, tril_q), np.float64)
    loc_p, tril_p, loc_q, tril_q = (
        np.asarray(a, np.float64) for a in (loc_p, tril_p, loc_q, tril_q)
    )
    for i in np.ndindex(out.shape):
        tri = tril_p[i[1]] if batched_p else tril_p
        ref = _dense_gaussian_kl(loc_p[i], tri, loc_q[i], tril_q)
        np.testing.assert_allclose(out[i], ref, rtol=2e-5)
