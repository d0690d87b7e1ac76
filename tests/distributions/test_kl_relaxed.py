"""The KLs of :mod:`numpyro_relax.distributions.kl_relaxed`, against independent computations:
the discrete KL by enumeration in numpy (and the law of argmax of relaxed samples it stands
for), and the hard-concrete KL by adaptive quadrature in gate space and by Monte Carlo with a
tolerance from the standard error."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from numpyro.distributions.kl import kl_divergence
from scipy import integrate

from numpyro_relax.distributions import (
    HardConcrete,
    OneHotCategorical,
    RelaxedOneHotCategorical,
    RelaxedOneHotCategoricalStraightThrough,
)
from numpyro_relax.distributions.kl_relaxed import hard_concrete_kl


def _np_categorical_kl(lp, lq):
    p = np.exp(lp - np.logaddexp.reduce(lp, -1, keepdims=True))
    q = np.exp(lq - np.logaddexp.reduce(lq, -1, keepdims=True))
    return np.sum(p * (np.log(p) - np.log(q)), -1)


def test_relaxed_onehot_vs_onehot_is_the_kl_of_the_argmax_law():
    logits = jnp.array([[1.0, -0.5, 0.2, 2.0], [0.0, 3.0, -3.0, 0.5]])
    prior = jnp.array([0.3, 0.0, -0.4, 0.1])
    exact = _np_categorical_kl(np.asarray(logits, np.float64), np.asarray(prior, np.float64))
    for t in (0.1, 0.5, 2.0):  # the KL of the discrete laws does not depend on the temperature
        kl = kl_divergence(
            RelaxedOneHotCategorical(t, logits=logits), OneHotCategorical(logits=prior)
        )
        np.testing.assert_allclose(np.asarray(kl), exact, rtol=1e-5)
    # the discrete law is that of argmax of the relaxed sample: frequencies within 5 s.e.
    n = 100_000
    z = RelaxedOneHotCategorical(0.7, logits=logits).sample(jax.random.PRNGKey(0), (n,))
    freq = np.asarray(jax.nn.one_hot(jnp.argmax(z, -1), 4).mean(0))
    probs = np.asarray(jax.nn.softmax(logits, -1))
    se = np.sqrt(probs * (1 - probs) / n)
    np.testing.assert_array_less(np.abs(freq - probs), 5 * se + 1e-6)


def test_relaxed_onehot_kl_through_plates_and_to_event():
    # as in a VAE: guide logits (B, N, K) with to_event(1); prior (N, K) expanded by a plate
    logits = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 4))
    guide = RelaxedOneHotCategorical(0.5, logits=logits).to_event(1)
    prior = OneHotCategorical(logits=jnp.zeros((5, 4))).to_event(1).expand((3,))
    kl = np.asarray(kl_divergence(guide, prior))
    exact = _np_categorical_kl(np.asarray(logits, np.float64), np.zeros(4)).sum(-1)
    assert kl.shape == (3,)
    np.testing.assert_allclose(kl, exact, rtol=1e-5)


def test_straight_through_keeps_its_own_registration():
    logits, prior = jnp.array([0.5, -1.0, 2.0]), jnp.array([0.1, 0.2, -0.3])
    st = kl_divergence(
        RelaxedOneHotCategoricalStraightThrough(0.5, logits=logits), OneHotCategorical(logits=prior)
    )
    np.testing.assert_allclose(
        float(st), _np_categorical_kl(np.asarray(logits), np.asarray(prior)), rtol=1e-5
    )


@pytest.mark.parametrize("prior", ["logits", "probs"])
def test_numpyro_relaxed_bernoulli_vs_bernoulli(prior):
    logits = jnp.array([-3.0, -0.2, 0.0, 1.5, 8.0])
    q_logits = jnp.array([0.0, 1.0, -2.0, 0.3, 0.0])
    q = (
        dist.Bernoulli(logits=q_logits)
        if prior == "logits"
        else dist.Bernoulli(probs=jax.nn.sigmoid(q_logits))
    )
    kl = kl_divergence(dist.RelaxedBernoulliLogits(0.4, logits), q)
    two = lambda lg: np.stack([-np.logaddexp(0, lg), -np.logaddexp(0, -lg)], -1)  # noqa: E731
    exact = _np_categorical_kl(
        two(np.asarray(logits, np.float64)), two(np.asarray(q_logits, np.float64))
    )
    np.testing.assert_allclose(np.asarray(kl), exact, rtol=1e-4, atol=1e-6)


def _quad_hard_concrete_kl(p, q):
    """Atoms from the exact masses, interior by scipy's adaptive quadrature of the gate-space
    densities (``log_prob`` inside (0, 1)): independent of the logit-space formula."""
    p0, p1 = (float(jnp.exp(p.log_prob(jnp.array(v)))) for v in (0.0, 1.0))
    q0, q1 = (float(jnp.exp(q.log_prob(jnp.array(v)))) for v in (0.0, 1.0))

    def integrand(z):
        lp, lq = float(p.log_prob(jnp.array(z))), float(q.log_prob(jnp.array(z)))
        return np.exp(lp) * (lp - lq)

    inside, _ = integrate.quad(integrand, 0.0, 1.0, limit=200, epsabs=1e-9)
    return p0 * np.log(p0 / q0) + p1 * np.log(p1 / q1) + inside


@pytest.mark.parametrize(
    "log_alpha,beta,log_alpha_q,beta_q",
    [
        (1.5, 2 / 3, 0.0, 2 / 3),
        (-2.0, 0.6, 0.0, 0.6),
        (0.5, 0.2, -1.0, 1.0),
        (4.0, 2 / 3, 1.0, 0.3),
    ],
)
def test_hard_concrete_kl_matches_quadrature(log_alpha, beta, log_alpha_q, beta_q):
    with jax.enable_x64(True):
        p = HardConcrete(jnp.float64(log_alpha), jnp.float64(beta))
        q = HardConcrete(jnp.float64(log_alpha_q), jnp.float64(beta_q))
        kl = float(kl_divergence(p, q))
        np.testing.assert_allclose(kl, _quad_hard_concrete_kl(p, q), rtol=1e-6, atol=1e-9)


def test_hard_concrete_kl_matches_monte_carlo():
    p = HardConcrete(jnp.array([1.5, -2.0, 0.3]), jnp.array([0.6, 0.6, 1.0]))
    q = HardConcrete(jnp.zeros(3), 0.6)
    kl = np.asarray(hard_concrete_kl(p, q))
    z = p.sample(jax.random.PRNGKey(1), (400_000,))
    terms = np.asarray(p.log_prob(z) - q.log_prob(z), np.float64)
    se = terms.std(0) / np.sqrt(terms.shape[0])
    assert np.all(kl >= 0)
    np.testing.assert_array_less(np.abs(kl - terms.mean(0)), 5 * se)


def test_hard_concrete_kl_properties():
    p = HardConcrete(jnp.array([[-1.0], [2.0]]), 2 / 3)  # batch (2, 1) against (3,)
    q = HardConcrete(jnp.array([0.0, 1.0, -3.0]), 2 / 3)
    kl = kl_divergence(p, q)
    assert kl.shape == (2, 3) and np.all(np.asarray(kl) > 0)
    np.testing.assert_allclose(np.asarray(kl_divergence(q, q)), 0.0, atol=1e-6)
    # through to_event, jitted, with finite gradients in both gates' parameters
    f = jax.jit(
        lambda a, b: kl_divergence(
            HardConcrete(a, 0.5).to_event(1), HardConcrete(b, 0.5).to_event(1)
        )
    )
    grads = jax.grad(f, argnums=(0, 1))(jnp.array([0.5, -30.0, 30.0]), jnp.zeros(3))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
    with pytest.raises(ValueError, match="limits differ"):
        kl_divergence(HardConcrete(0.0, limit_low=-0.2), HardConcrete(0.0))
