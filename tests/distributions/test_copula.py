""":class:`LogitCorrelatedRelaxedBernoulli`: the generic protocol, and its density against
independent computations: the product of binary-Concrete logit densities when the correlation
is the identity, the change of variables from the gate-space density, numerical integration to
one, Kolmogorov-Smirnov tests of its marginals, and exactness where the gates saturate."""

import jax
import jax.numpy as jnp
import numpy as np
from conformance import Case, ConformanceSuite
from scipy import integrate, special, stats

from numpyro_relax.distributions import CorrelatedRelaxedBernoulli, LogitRelaxedBernoulli
from numpyro_relax.distributions.copula import LogitCorrelatedRelaxedBernoulli

CORR = jnp.array(
    [
        [[1.0, 0.6, -0.2], [0.6, 1.0, 0.3], [-0.2, 0.3, 1.0]],
        [[1.0, -0.4, 0.1], [-0.4, 1.0, 0.5], [0.1, 0.5, 1.0]],
    ]
)
PROBS = jnp.array([[0.3, 0.6, 0.8], [0.5, 0.2, 0.4]])


class TestConformance(ConformanceSuite):
    cases = [
        Case(
            "logit_correlated_gates",
            LogitCorrelatedRelaxedBernoulli,
            {"probs": PROBS, "correlation": CORR, "temperature": jnp.array([0.5, 1.0])},
            invalid={
                "correlation": CORR.at[0, 0, 1].set(0.9),  # not symmetric
                "probs": PROBS.at[0, 1].set(1.6),
                "temperature": jnp.array([0.5, -1.0]),
            },
            fd_sample=("probs",),
            fd_log_prob=("probs",),
        )
    ]


def test_identity_correlation_is_independent_logit_concretes():
    d = LogitCorrelatedRelaxedBernoulli(PROBS, jnp.eye(3), jnp.array([0.5, 1.0]))
    y = jnp.array([[[-3.0, 0.2, 40.0], [1.0, -60.0, 0.0]]])  # includes saturated gates
    marginal = LogitRelaxedBernoulli(jnp.array([[0.5], [1.0]]), probs=PROBS)
    np.testing.assert_allclose(
        np.asarray(d.log_prob(y)), np.asarray(marginal.log_prob(y).sum(-1)), rtol=1e-5
    )


def test_change_of_variables_from_the_gates():
    d = LogitCorrelatedRelaxedBernoulli(PROBS, CORR, jnp.array([0.5, 1.0]))
    y = d.sample(jax.random.PRNGKey(0), (50,))
    y = jnp.clip(y, -8.0, 8.0)  # where sigmoid(y) does not round in float32
    gates = CorrelatedRelaxedBernoulli(PROBS, CORR, jnp.array([0.5, 1.0]))
    m = jax.nn.sigmoid(y)
    expected = gates.log_prob(m) + jnp.sum(jax.nn.log_sigmoid(y) + jax.nn.log_sigmoid(-y), -1)
    np.testing.assert_allclose(np.asarray(d.log_prob(y)), np.asarray(expected), rtol=2e-4)


def test_density_integrates_to_one():
    with jax.enable_x64(True):
        corr = jnp.array([[1.0, 0.7], [0.7, 1.0]])
        d = LogitCorrelatedRelaxedBernoulli(jnp.array([0.3, 0.6]), corr, 0.8)

        def f(y1, y0):
            return float(jnp.exp(d.log_prob(jnp.array([y0, y1]))))

        total, _ = integrate.dblquad(f, -40, 40, -40, 40, epsabs=1e-7)
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


def test_marginals_and_saturated_samples():
    t = jnp.array([0.5, 1.0])
    d = LogitCorrelatedRelaxedBernoulli(PROBS, CORR, t)
    n = 20_000
    y, (v,) = d.sample_with_intermediates(jax.random.PRNGKey(1), (n,))
    # each coordinate is a binary Concrete in logit space: P(y <= a) = sigmoid(t a - logit pi)
    logits = np.asarray(special.logit(PROBS))
    for b in range(2):
        for k in range(3):
            cdf = lambda a, b=b, k=k: special.expit(float(t[b]) * a - logits[b, k])  # noqa: E731
            assert stats.kstest(np.asarray(y[:, b, k]), cdf).pvalue > 1e-3
    # from the value alone, log_prob recovers the intermediates' density, saturated gates too
    lp_value, lp_inter = d.log_prob(y), d.log_prob(y, intermediates=[v])
    saturated = np.asarray(jnp.any(jnp.abs(y) > 20, -1))
    assert saturated.any() and np.all(np.isfinite(np.asarray(lp_value)))
    np.testing.assert_allclose(np.asarray(lp_value), np.asarray(lp_inter), rtol=1e-4, atol=1e-4)
