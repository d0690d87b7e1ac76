"""The Laplace bridge: hand-computed values, moments, exact round trips, batching, the std trap."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from jax import random
from numpyro.distributions import Dirichlet, MultivariateNormal, Normal
from scipy.special import digamma, polygamma

from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
)
from numpyro_relax.laplace_bridge import (
    dirichlet_logit_variance,
    dirichlet_to_gaussian,
    gaussian_to_dirichlet,
    laplace_bridge,
)

ALPHA = jnp.array([1.0, 2.0, 4.0])
# by hand: mu = log a - mean(log a) = (-log 2, 0, log 2); Sigma_kk = (1/a_k)(1 - 2/3) + (1/9)(7/4),
# Sigma_kl = -(1/3)(1/a_k + 1/a_l) + (1/9)(7/4)
MU = np.array([-np.log(2.0), 0.0, np.log(2.0)])
SIGMA = np.array([[19.0, -11.0, -8.0], [-11.0, 13.0, -2.0], [-8.0, -2.0, 10.0]]) / 36.0


@jax.jit
def _bridges(alpha):
    loc, cov = dirichlet_to_gaussian(alpha)
    full = laplace_bridge(Dirichlet(alpha))
    diag = laplace_bridge(Dirichlet(alpha), diagonal=True)
    assert isinstance(full, LogisticNormal) and isinstance(diag, LogisticNormalSoftmax)
    return {
        "loc": loc,
        "cov": cov,
        "alpha": gaussian_to_dirichlet(loc, jnp.diagonal(cov)),
        "full_loc": full.loc,
        "full_cov": full.covariance_matrix,
        "diag_loc": diag.loc,
        "diag_scale": diag.scale,
    }


def test_hand_computed_example():
    out = _bridges(ALPHA)
    np.testing.assert_allclose(out["loc"], MU, atol=1e-6)
    np.testing.assert_allclose(out["cov"], SIGMA, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["alpha"], ALPHA, rtol=1e-6)
    np.testing.assert_allclose(out["full_loc"], [np.log(1 / 4), np.log(2 / 4)], rtol=1e-6)
    # A Sigma A^T = diag(1/a_1, 1/a_2) + 1/a_3
    np.testing.assert_allclose(out["full_cov"], [[1.25, 0.25], [0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(out["diag_loc"], MU, atol=1e-6)
    # the variance trap: the *standard deviation* handed to the logistic-normal is sqrt(Sigma_kk)
    np.testing.assert_allclose(out["diag_scale"], np.sqrt(np.diag(SIGMA)), rtol=1e-6)


def test_full_bridge_is_softmax_of_independent_logits():
    """A Sigma A^T = A diag(1/alpha) A^T: the full bridge is softmax(N(log a, diag(1/a)))."""

    @jax.jit
    def log_probs(alpha, key):
        full = laplace_bridge(Dirichlet(alpha))
        same = LogisticNormalSoftmax(jnp.log(alpha), 1 / jnp.sqrt(alpha))
        fast = laplace_bridge(Dirichlet(alpha), diagonal=True)
        x = full.sample(key, (100,))
        return full.log_prob(x), same.log_prob(x), fast.log_prob(x)

    full, same, fast = log_probs(ALPHA, random.PRNGKey(0))
    np.testing.assert_allclose(full, same, rtol=1e-4, atol=1e-4)
    assert not np.allclose(fast, full, atol=0.1)


@pytest.mark.parametrize("diagonal", [False, True])
def test_round_trip_is_exact_and_batched(diagonal):
    @jax.jit
    def round_trip(alpha):
        d = laplace_bridge(Dirichlet(alpha), diagonal=diagonal)
        assert d.batch_shape == alpha.shape[:-1] and d.event_shape == alpha.shape[-1:]
        back = laplace_bridge(d)
        assert isinstance(back, Dirichlet) and back.batch_shape == alpha.shape[:-1]
        loc, cov = dirichlet_to_gaussian(alpha)
        assert loc.shape == alpha.shape and cov.shape == alpha.shape + alpha.shape[-1:]
        var = jnp.diagonal(cov, axis1=-2, axis2=-1)
        return back.concentration, gaussian_to_dirichlet(loc, var)

    with jax.enable_x64(True):
        alpha = jnp.exp(random.normal(random.PRNGKey(1), (2, 3, 5), jnp.float64) * 2)
        for out in round_trip(alpha):
            assert out.dtype == jnp.float64
            np.testing.assert_allclose(out, alpha, rtol=1e-11)
    alpha32 = jnp.array([[0.3, 1.0, 7.0, 50.0], [2.0, 2.0, 2.0, 2.0]])
    for out in round_trip(alpha32):
        np.testing.assert_allclose(out, alpha32, rtol=2e-5)


def test_bridge_matches_moments_of_centred_log_dirichlet_samples():
    """For large concentrations the bridge Gaussian matches E and Cov of z = log x - mean(log x).

    Exact moments: E z = P psi(a), Cov z = P diag(psi'(a)) P. The Laplace bridge replaces psi(a)
    by log a and psi'(a) by 1/a: errors below 1/a and 1/a^2, the allowance added to 5 SE.
    """
    alpha = np.array([150.0, 250.0, 400.0, 200.0])
    n = 20_000
    x = jax.jit(lambda a, k: Dirichlet(a).sample(k, (n,)))(jnp.asarray(alpha), random.PRNGKey(2))
    z = np.log(np.asarray(x, np.float64))
    z -= z.mean(-1, keepdims=True)
    loc, cov = (np.asarray(a) for a in dirichlet_to_gaussian(jnp.asarray(alpha)))
    m = z.mean(0)
    se_m = z.std(0) / np.sqrt(n)
    bias_m = 1 / alpha.min()
    assert np.all(np.abs(m - loc) < 5 * se_m + bias_m), (m, loc)
    c = z - m
    prods = c[:, :, None] * c[:, None, :]
    emp, se_c = prods.mean(0), prods.std(0) / np.sqrt(n)
    bias_c = np.abs(cov).max() / alpha.min()
    assert np.all(np.abs(emp - cov) < 5 * se_c + bias_c)
    # the allowances are small next to what they allow: the comparison has teeth
    p = np.eye(4) - 1 / 4
    exact_cov = p @ np.diag(polygamma(1, alpha)) @ p
    exact_mean = p @ digamma(alpha)
    assert np.abs(exact_cov - cov).max() < bias_c and np.abs(exact_mean - loc).max() < bias_m
    assert bias_c < 0.02 * np.abs(cov).max()
    # relaxit's trap: using the standard deviation as the variance is far outside the tolerance
    std = np.sqrt(np.diag(cov))
    assert np.all(np.abs(np.diag(emp) - std) > 50 * (np.diag(se_c) + bias_c))


def test_gaussian_to_dirichlet_is_shift_invariant_without_overflow():
    mu = jnp.array([0.5, -1.0, 2.0, 0.0], jnp.float32)
    var = jnp.array([0.3, 0.5, 0.2, 0.4], jnp.float32)
    a = gaussian_to_dirichlet(mu, var)
    # exp(-mu) alone would overflow float32 at a shift of -95
    b = gaussian_to_dirichlet(mu - 95.0, var)
    assert bool(jnp.all(jnp.isfinite(b)))
    np.testing.assert_allclose(b, a, rtol=1e-5)
    # the formula written out, at the unshifted logits
    k = 4
    ref = (1 - 2 / k + np.exp(mu) * np.exp(-mu).sum() / k**2) / var
    np.testing.assert_allclose(a, ref, rtol=1e-6)


def test_gaussians_over_logits_to_dirichlet():
    loc = jnp.array([[0.5, -1.0, 2.0], [0.0, 0.1, -0.3]])
    cov = jnp.array([[1.0, 0.3, 0.1], [0.3, 0.5, 0.0], [0.1, 0.0, 0.8]])

    @jax.jit
    def run(loc, cov):
        scale = jnp.sqrt(jnp.diag(cov))
        laws = (
            MultivariateNormal(loc, cov),
            Normal(loc, scale),
            Normal(loc, scale).to_event(1),
            LogisticNormalSoftmax(loc, scale),
        )
        outs = [laplace_bridge(d) for d in laws]
        assert all(isinstance(o, Dirichlet) and o.batch_shape == (2,) for o in outs)
        return gaussian_to_dirichlet(loc, jnp.diag(cov)), [o.concentration for o in outs]

    expected, outs = run(loc, cov)
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_alr_laws_bridge_through_their_sum_to_zero_logits():
    loc = np.array([0.3, -0.2, 0.5])
    tril = np.array([[0.9, 0.0, 0.0], [0.3, 0.7, 0.0], [-0.2, 0.1, 0.5]])
    s = np.zeros((4, 4))
    s[:3, :3] = tril @ tril.T
    p = np.eye(4) - 1 / 4
    z_loc = p @ np.append(loc, 0.0)  # z = P [y, 0], written out densely
    z_var = np.diag(p @ s @ p)
    k = 4
    expected = (1 - 2 / k + np.exp(z_loc) * np.exp(-z_loc).sum() / k**2) / z_var

    @jax.jit
    def run(loc, tril, key):
        ln = LogisticNormal(loc, tril)
        # an IGR is the logistic-normal with ALR mean loc/tau - log(delta), sd scale/tau
        igr = InvertibleGaussian(jnp.array([0.3, -0.2]), jnp.array([0.5, 0.8]), 0.5, 2.0)
        ln2 = LogisticNormal(jnp.array([0.6, -0.4]) - jnp.log(2.0), jnp.diag(jnp.array([1.0, 1.6])))
        x = ln2.sample(key, (10,))
        return (
            laplace_bridge(ln).concentration,
            laplace_bridge(igr).concentration,
            laplace_bridge(ln2).concentration,
            igr.log_prob(x),
            ln2.log_prob(x),
        )

    with jax.enable_x64(True):
        a_ln, a_igr, a_ln2, lp_igr, lp_ln2 = run(
            jnp.asarray(loc), jnp.asarray(tril), random.PRNGKey(0)
        )
        np.testing.assert_allclose(a_ln, expected, rtol=1e-12)
        np.testing.assert_allclose(a_igr, a_ln2, rtol=1e-12)
        np.testing.assert_allclose(lp_igr, lp_ln2, rtol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="covariance"):
        gaussian_to_dirichlet(jnp.zeros(3), jnp.eye(3))
    with pytest.raises(ValueError, match="K >= 2"):
        dirichlet_to_gaussian(jnp.ones(1))
    with pytest.raises(TypeError, match="Dirichlet"):
        laplace_bridge(Normal(0.0, 1.0).expand((3,)).to_event(1).to_event(0).mask(True))


def test_logit_variance_is_the_covariance_diagonal():
    """The O(K) diagonal used by laplace_bridge(diagonal=True) equals the full matrix's."""
    from numpyro_relax.laplace_bridge import dirichlet_logit_variance, dirichlet_to_gaussian

    alpha = jnp.array([[1.0, 2.0, 4.0, 0.5], [3.0, 3.0, 0.2, 7.0]])
    loc, var = dirichlet_logit_variance(alpha)
    loc_full, cov = dirichlet_to_gaussian(alpha)
    np.testing.assert_allclose(loc, loc_full, rtol=1e-6)
    np.testing.assert_allclose(var, jnp.diagonal(cov, axis1=-2, axis2=-1), rtol=1e-6)
    # the paper's hand example alpha = (1, 2, 4): diagonal of [[19,-11,-8],[-11,13,-2],[-8,-2,10]]/36
    _, var3 = dirichlet_logit_variance(jnp.array([1.0, 2.0, 4.0]))
    np.testing.assert_allclose(var3, jnp.array([19.0, 13.0, 10.0]) / 36, rtol=1e-6)


@pytest.mark.parametrize("bad", [-1.0, 0.0, np.inf, np.nan])
def test_non_positive_parameters_are_value_errors_naming_the_argument(bad):
    """A concentration or a variance that is not positive and finite raises (it would give
    NaN or inf); traced values are not checked (the bridge stays jit-able)."""
    alpha = jnp.array([1.0, bad, 2.0])
    with pytest.raises(ValueError, match="`concentration`"):
        dirichlet_to_gaussian(alpha)
    with pytest.raises(ValueError, match="`concentration`"):
        dirichlet_logit_variance(alpha)
    with pytest.raises(ValueError, match="`variance`"):
        gaussian_to_dirichlet(jnp.zeros(3), alpha)
    with numpyro.validation_enabled(False):
        with pytest.raises(ValueError, match="`concentration`"):
            laplace_bridge(Dirichlet(alpha))
        with pytest.raises(ValueError, match="`concentration`"):
            laplace_bridge(Dirichlet(alpha), diagonal=True)
        # a Gaussian's variance is its scale squared (a negative scale gives a valid one): a
        # zero, infinite or NaN scale gives a variance that is not positive and finite
        gaussians = [Normal(jnp.zeros(3), alpha), LogisticNormalSoftmax(jnp.zeros(3), alpha)]
        for d in gaussians if not bad < 0 else []:
            with pytest.raises(ValueError, match="`variance`"):
                laplace_bridge(d)
    # under jit the values are unknown: no error, the arithmetic runs on
    loc, _ = jax.jit(dirichlet_to_gaussian)(alpha)
    assert loc.shape == (3,)
    assert jax.jit(gaussian_to_dirichlet)(jnp.zeros(3), alpha).shape == (3,)
