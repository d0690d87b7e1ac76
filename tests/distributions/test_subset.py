"""Relaxed k-subsets: the unordered-subset law by enumeration, relaxation limits, gradients."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conformance import Case, ConformanceSuite
from jax import random
from scipy import stats

import numpyro_relax as nr
from numpyro_relax.distributions.subset import (
    _log_prob_enumerated,
    _log_prob_integral,
    subset_log_prob,
)

LOGITS = jnp.array([[0.3, -1.0, 2.0, 0.5, 0.0], [1.0, 0.0, -0.5, 0.2, -2.0]])
TEMPS = jnp.array([0.5, 1.5])


def _hard_value(d, key, shape):
    perturbed = d.logits + random.gumbel(key, shape + d.batch_shape + d.event_shape)
    _, idx = jax.lax.top_k(perturbed, d.k)
    return jnp.sum(jax.nn.one_hot(idx, d.event_shape[-1]), axis=-2)


class TestConformance(ConformanceSuite):
    cases = [
        Case(
            "top2_hard",
            lambda **kw: nr.GumbelSoftmaxTopK(2, hard=True, **kw),
            {"temperature": TEMPS, "logits": LOGITS},
            invalid={"temperature": jnp.array([0.5, -1.0])},
            continuous_sample=False,
            fd_log_prob=("logits",),
        ),
        Case(
            "top3_soft",
            lambda **kw: nr.GumbelSoftmaxTopK(3, **kw),
            {"temperature": TEMPS, "probs": jax.nn.softmax(LOGITS)},
            invalid={"probs": jnp.array([[0.5, 0.5, 0.5, 0.1, 0.1]] * 2)},
            value=_hard_value,
        ),
        Case(
            "top3_soft_logits",
            lambda **kw: nr.GumbelSoftmaxTopK(3, **kw),
            {"temperature": TEMPS, "logits": LOGITS},
            fd_sample=("logits", "temperature"),
            value=_hard_value,
        ),
    ]


def _brute_force(p, subset):
    """Sum over orderings of prod p_j / (1 - sum of earlier p), in float64 Python."""
    total = 0.0
    for order in itertools.permutations(subset):
        prob, rest = 1.0, 1.0
        for i in order:
            prob *= p[i] / rest
            rest -= p[i]
        total += prob
    return total


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_subset_probabilities_sum_to_one_and_match_enumeration(k):
    logits = np.array([0.3, -1.0, 2.0, 0.5, 0.0, 1.1, -0.4])
    p = np.exp(logits - np.logaddexp.reduce(logits))
    subsets = list(itertools.combinations(range(7), k))
    values = np.zeros((len(subsets), 7))
    for row, s in enumerate(subsets):
        values[row, list(s)] = 1
    with jax.enable_x64(True):
        lp = np.asarray(subset_log_prob(jnp.asarray(values), jnp.log(jnp.asarray(p)), k))
    np.testing.assert_allclose(np.exp(lp).sum(), 1.0, rtol=1e-9)
    ref = np.array([_brute_force(p, s) for s in subsets])
    np.testing.assert_allclose(np.exp(lp), ref, rtol=1e-8)


@pytest.mark.parametrize("k", [2, 4])
def test_integral_form_matches_enumeration_at_extreme_logits(k):
    logits = jnp.array([30.0, -30.0, 0.0, 5.0, -5.0, 29.0, 1.0, 2.0], jnp.float32)
    logp = jax.nn.log_softmax(logits)
    for members in itertools.combinations(range(8), k):
        rest = [i for i in range(8) if i not in members]
        lm = logp[jnp.array(members)]
        lr = jax.scipy.special.logsumexp(logp[jnp.array(rest)])
        a, b = _log_prob_integral(lm, lr), _log_prob_enumerated(lm, lr)
        assert np.isfinite(float(a))
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


def test_hard_samples_follow_the_subset_law():
    logits = jnp.array([0.3, -1.0, 2.0, 0.5, 0.0])
    d = nr.GumbelSoftmaxTopK(2, 0.5, logits=logits, hard=True)
    z = np.asarray(d.sample(random.PRNGKey(3), (20000,)))
    assert set(np.unique(z)) <= {0.0, 1.0} and np.all(z.sum(-1) == 2)
    subsets = list(itertools.combinations(range(5), 2))
    values = np.zeros((len(subsets), 5), np.float32)
    for i, s in enumerate(subsets):
        values[i, list(s)] = 1
    bits = 2 ** np.arange(5)
    counts = (z @ bits)[:, None] == (values @ bits)[None, :]
    counts = counts.sum(0)
    assert counts.sum() == z.shape[0]
    p = np.exp(np.asarray(d.log_prob(jnp.asarray(values)), np.float64))
    assert stats.chisquare(counts, p / p.sum() * counts.sum()).pvalue > 1e-3


def test_relaxation_sums_to_k_and_tends_to_the_hard_subset():
    logits = jnp.array([[0.3, -1.0, 2.0, 0.5, 0.0]] * 3)
    key = random.PRNGKey(5)
    hard = nr.GumbelSoftmaxTopK(3, 0.05, logits=logits, hard=True).sample(key, (500,))
    errors = []
    for t in [1.0, 0.1, 0.01]:
        soft = nr.GumbelSoftmaxTopK(3, t, logits=logits).sample(key, (500,))
        np.testing.assert_allclose(soft.sum(-1), 3.0, atol=1e-4)
        errors.append(float(jnp.mean(jnp.abs(soft - hard))))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01
    # rounding recovers the hard subset except at near-ties of the perturbed scores
    assert float(jnp.mean(jnp.all(jnp.round(soft) == hard, -1))) > 0.98


def test_straight_through_gradient_is_the_relaxed_gradient():
    logits = jnp.array([0.3, -1.0, 2.0, 0.5, 0.0])
    key = random.PRNGKey(2)
    w = random.normal(random.PRNGKey(9), (8, 5))

    def f(lg, hard):
        return jnp.sum(w * nr.GumbelSoftmaxTopK(2, 0.5, logits=lg, hard=hard).sample(key, (8,)))

    np.testing.assert_allclose(
        jax.grad(f)(logits, True), jax.grad(f)(logits, False), rtol=1e-5, atol=1e-6
    )


def test_probs_are_not_logits():
    probs = jnp.array([0.1, 0.2, 0.3, 0.15, 0.25])
    v = jnp.array([0.0, 1.0, 1.0, 0.0, 0.0])
    a = nr.GumbelSoftmaxTopK(2, 0.5, probs=probs).log_prob(v)
    b = nr.GumbelSoftmaxTopK(2, 0.5, logits=jnp.log(probs)).log_prob(v)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(
        jnp.exp(a), _brute_force(np.asarray(probs, np.float64), (1, 2)), rtol=1e-5
    )


def test_float32_low_temperature_extreme_logits():
    logits = jnp.array([30.0, -30.0, 0.0, 5.0, -5.0, 29.0], jnp.float32)
    key = random.PRNGKey(0)

    def loss(lg, t):
        d = nr.GumbelSoftmaxTopK(3, t, logits=lg, hard=True)
        z = d.sample(key, (64,))
        return jnp.sum(z * jnp.arange(6.0)) + jnp.sum(d.log_prob(jax.lax.stop_gradient(z)))

    val, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(logits, 0.01)
    assert np.isfinite(float(val)) and all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    soft = nr.GumbelSoftmaxTopK(3, 0.01, logits=logits).sample(key, (64,))
    assert bool(jnp.all(jnp.isfinite(soft)))


def test_errors():
    with pytest.raises(ValueError, match="k"):
        nr.GumbelSoftmaxTopK(6, 0.5, logits=jnp.zeros(5))
    with pytest.raises(ValueError, match="k"):
        nr.GumbelSoftmaxTopK(0, 0.5, logits=jnp.zeros(5))
    with pytest.raises(ValueError, match="probs.*logits"):
        nr.GumbelSoftmaxTopK(2, 0.5)
    with pytest.raises(ValueError, match="temperature"):
        nr.GumbelSoftmaxTopK(2, 0.0, logits=jnp.zeros(5))
    d = nr.GumbelSoftmaxTopK(2, 0.5, logits=jnp.zeros(5))
    with pytest.raises(ValueError, match="k-hot"):
        d.log_prob(d.sample(random.PRNGKey(0)))
