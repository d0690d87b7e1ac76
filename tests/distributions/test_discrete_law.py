""":func:`discrete_law` against the hard values of samples (frequencies within 5 standard
errors), and :func:`argmax_normal_log_probs` against adaptive quadrature in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import integrate, stats

from numpyro_relax.distributions import (
    CorrelatedRelaxedBernoulli,
    DecoupledStraightThroughGumbelSoftmax,
    ExpRelaxedOneHotCategorical,
    GaussianRelaxedBernoulli,
    HardConcrete,
    InvertibleGaussian,
    LogisticNormalSoftmax,
    LogitNormal,
    LogitRelaxedBernoulli,
    OneHotCategorical,
    RelaxedBernoulliStraightThrough,
    RelaxedOneHotCategorical,
    RelaxedOneHotCategoricalStraightThrough,
    StochasticTimesSmooth,
)
from numpyro_relax.distributions.discrete_law import argmax_normal_log_probs, discrete_law
from numpyro_relax.infer.reparam import relaxed_bernoulli

LOGITS = jnp.array([[0.5, -1.0, 1.5, 0.0], [2.0, 0.3, -0.7, -2.0]])
LOC3 = jnp.array([[0.4, -0.6, 0.9], [1.5, 0.2, -1.0]])
SCALE3 = jnp.array([[1.0, 0.5, 2.0], [0.4, 1.2, 0.8]])
BITS = jnp.array([-2.0, -0.3, 0.0, 0.8, 2.5])


def argmax(x):
    return jax.nn.one_hot(jnp.argmax(x, -1), x.shape[-1])


def above_half(z):
    return (z > 0.5).astype(jnp.float32)


CASES = [
    ("exp-concrete", ExpRelaxedOneHotCategorical(0.7, logits=LOGITS), argmax),
    ("concrete", RelaxedOneHotCategorical(0.4, logits=LOGITS), argmax),
    ("st-concrete", RelaxedOneHotCategoricalStraightThrough(0.4, logits=LOGITS), argmax),
    ("decoupled", DecoupledStraightThroughGumbelSoftmax(0.6, 1.0, logits=LOGITS), argmax),
    ("igr", InvertibleGaussian(LOC3, SCALE3, 0.5), argmax),
    ("igr-delta", InvertibleGaussian(LOC3, SCALE3, jnp.array([0.5, 2.0]), delta=3.0), argmax),
    ("logistic-normal", LogisticNormalSoftmax(LOC3, SCALE3), argmax),
    ("logit-concrete", LogitRelaxedBernoulli(0.5, logits=BITS), lambda y: (y > 0) * 1.0),
    ("numpyro-concrete", dist.RelaxedBernoulliLogits(0.5, BITS), above_half),
    ("reparam-concrete", relaxed_bernoulli(0.5, logits=BITS), above_half),
    ("st-bits", RelaxedBernoulliStraightThrough(0.5, logits=BITS), above_half),
    ("stg", GaussianRelaxedBernoulli(0.5 + 0.3 * BITS, 0.5), above_half),
    ("hard-concrete", HardConcrete(BITS, 0.6), above_half),
    ("hard-concrete-limits", HardConcrete(BITS, 2 / 3, -0.3, 1.05), above_half),
    ("logit-normal", LogitNormal(BITS, 1.5), above_half),
    ("stochastic-times-smooth", StochasticTimesSmooth(logits=BITS), lambda z: (z > 0) * 1.0),
]


@pytest.mark.parametrize("d,hard", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_law_of_the_hard_value(d, hard):
    n = 40_000
    law = discrete_law(d)
    freq = np.asarray(hard(d.sample(jax.random.PRNGKey(0), (n,))).mean(0), np.float64)
    if isinstance(law, OneHotCategorical):
        probs = np.asarray(law.probs, np.float64)
    else:
        assert isinstance(law, dist.BernoulliLogits)
        probs = np.asarray(law.probs, np.float64)
    assert probs.shape == freq.shape
    se = np.sqrt(probs * (1 - probs) / n)
    np.testing.assert_array_less(np.abs(freq - probs), 5 * se + 1e-6)


def test_wrappers_are_kept():
    d = RelaxedOneHotCategorical(0.5, logits=LOGITS).to_event(1).expand((3,)).mask(False)
    law = discrete_law(d)
    assert isinstance(law, dist.MaskedDistribution)
    assert law.batch_shape == (3,) and law.event_shape == (2, 4)
    np.testing.assert_allclose(law.base_dist.base_dist.base_dist.logits, LOGITS)
    for discrete in (OneHotCategorical(logits=LOGITS), dist.Bernoulli(logits=BITS)):
        assert discrete_law(discrete) is discrete
    with pytest.raises(NotImplementedError, match="CorrelatedRelaxedBernoulli"):
        discrete_law(CorrelatedRelaxedBernoulli(jnp.array([0.3, 0.6]), jnp.eye(2), 0.5))


def _quad_argmax(loc, scale, c=None):
    """P(argmax = k), by scipy's adaptive quadrature of the density of the winner."""
    lo = -np.inf if c is None else c
    probs = []
    for k in range(len(loc)):

        def f(t, k=k):
            others = [stats.norm.cdf(t, loc[j], scale[j]) for j in range(len(loc)) if j != k]
            return stats.norm.pdf(t, loc[k], scale[k]) * np.prod(others)

        probs.append(integrate.quad(f, lo, np.inf, epsabs=1e-12, limit=200)[0])
    if c is not None:
        probs.append(np.prod(stats.norm.cdf(c, loc, scale)))
    return np.array(probs)


@pytest.mark.parametrize("c", [None, 0.0, 0.7])
def test_argmax_normal_log_probs_matches_quadrature(c):
    with jax.enable_x64(True):
        rows = [*zip(np.asarray(LOC3, np.float64), np.asarray(SCALE3, np.float64), strict=True)]
        rows.append((np.array([0.0, 0.0, 0.0]), np.array([0.1, 1.0, 3.0])))  # the hardest seen
        for loc, scale in rows:
            exact = _quad_argmax(loc, scale, c)
            got = np.exp(np.asarray(argmax_normal_log_probs(loc, scale, c)))
            assert got.shape == exact.shape
            np.testing.assert_allclose(exact.sum(), 1.0, atol=1e-8)
            # the documented accuracy (the last row is off by 5e-5, the others by < 1e-7)
            np.testing.assert_allclose(got, exact, atol=1e-4)


def test_argmax_normal_log_probs_batches_and_differentiates():
    lp = argmax_normal_log_probs(jnp.zeros((5, 2, 3)), 1.0, threshold=jnp.zeros((5, 2)))
    assert lp.shape == (5, 2, 4)
    np.testing.assert_allclose(np.exp(lp[0, 0, :3]), (1 - 1 / 8) / 3, rtol=1e-4)
    g = jax.grad(lambda m: argmax_normal_log_probs(m, SCALE3)[..., 0].sum())(LOC3)
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[:, 0] > 0)
