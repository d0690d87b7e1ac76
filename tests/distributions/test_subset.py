"""Relaxed k-subsets: the unordered-subset law by enumeration, relaxation limits, gradients."""

import itertools
import math

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


@pytest.mark.parametrize("k", [2, 4, 7])
def test_integral_form_matches_enumeration_at_extreme_logits(k):
    logits = jnp.array([30.0, -30.0, 0.0, 5.0, -5.0, 29.0, 1.0, 2.0], jnp.float32)
    logp = jax.nn.log_softmax(logits)
    members = np.array(list(itertools.combinations(range(8), k)))  # every k-subset at once
    outside = np.ones((len(members), 8), bool)
    np.put_along_axis(outside, members, False, axis=1)
    lm = logp[members]
    lr = jax.scipy.special.logsumexp(jnp.where(outside, logp, -jnp.inf), axis=-1)
    a = jax.jit(_log_prob_integral)(lm, lr)
    b = jax.jit(_log_prob_enumerated)(lm, lr)
    assert np.all(np.isfinite(a))
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


def _rounding_tolerance(dtype, log_prob, num):
    """A few ulps of the magnitudes the computation adds up: ``log P`` and ``log K`` (the size
    of the log-probabilities it starts from)."""
    return 16 * float(jnp.finfo(dtype).eps) * (np.abs(log_prob) + math.log(num))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("num, k", [(80, 40), (200, 100), (1000, 500), (1000, 999), (10, 9)])
def test_log_prob_of_equal_logits_is_one_over_binomial(num, k, dtype):
    """Equal logits: every k-subset has probability exactly 1 / C(K, k) (issue #16: the old
    fixed-step integral was off by 2e-4 at (80, 40) and by 2.2 at (1000, 500))."""
    exact = -math.log(math.comb(num, k))
    with jax.enable_x64(dtype == jnp.float64):
        value = jnp.zeros(num, dtype).at[jnp.arange(k) * (num // k)].set(1)
        d = nr.GumbelSoftmaxTopK(k, 0.5, logits=jnp.zeros(num, dtype))
        lp = d.log_prob(value)
        assert lp.dtype == dtype
        np.testing.assert_allclose(
            float(lp), exact, rtol=0, atol=_rounding_tolerance(dtype, exact, num)
        )


def _subset_law(p, k):
    """Exact P(S) for every k-subset: the sum over orderings of the Plackett-Luce probabilities,
    grouped by the set of the first draws (Q(T) = sum_i Q(T - i) p_i / p(outside T - i)), in
    float64 NumPy with the outside mass summed directly (no 1 - x cancellation)."""
    num = len(p)
    masks = np.arange(2**num)
    bits = (masks[:, None] >> np.arange(num)) & 1
    size = bits.sum(1)
    outside = (1 - bits) @ p
    q = np.zeros(2**num)
    q[0] = 1.0
    for level in range(1, k + 1):
        at_level = masks[size == level]
        for i in range(num):
            with_i = at_level[(at_level >> i) & 1 == 1]
            before = with_i ^ (1 << i)
            q[with_i] += q[before] * p[i] / outside[before]
    return bits[size == k], q[size == k]


def test_log_prob_matches_enumerated_orderings_and_normalises_for_every_k():
    """K = 10, unequal logits, every k from 1 to K - 1, float32 and float64: log_prob against the
    enumeration, and the probabilities of all C(K, k) subsets sum to 1 (in float64 the old
    fixed-step integral was off by thousands of ulps from k = 5)."""
    num = 10
    logits = np.random.default_rng(0).normal(size=num) * 2.0
    p = np.exp(logits - np.logaddexp.reduce(logits))
    for k in range(1, num):
        values, ref = _subset_law(p, k)
        log_ref = np.log(ref)

        @jax.jit
        def log_prob(lg, v, k=k):
            return nr.GumbelSoftmaxTopK(k, 0.5, logits=lg).log_prob(v)

        for dtype in (jnp.float32, jnp.float64):
            with jax.enable_x64(dtype == jnp.float64):
                lp = log_prob(jnp.asarray(logits, dtype), jnp.asarray(values, dtype))
                lp = np.asarray(lp, np.float64)
            tol = _rounding_tolerance(dtype, log_ref, num)
            assert np.all(np.abs(lp - log_ref) <= tol), (
                k,
                dtype,
                np.max(np.abs(lp - log_ref) / tol),
            )
            # sum of the probabilities, each within a relative error of its tolerance
            assert abs(np.exp(lp).sum() - 1.0) <= np.sum(ref * tol), (k, dtype)


def test_integral_gradient_matches_enumeration():
    """The quadrature's own derivative (a custom JVP, node by node) against autodiff of the
    enumeration over orderings, k = 6 of 9, float64."""
    with jax.enable_x64(True):
        logits = jnp.asarray(np.random.default_rng(1).normal(size=9) * 3.0)
        mask = jnp.arange(9) < 6

        def split(lg):
            return lg[:6], jax.scipy.special.logsumexp(jnp.where(mask, -jnp.inf, lg))

        grads = [
            jax.jit(jax.grad(lambda lg, f=f: f(*split(lg))))(logits)
            for f in (_log_prob_integral, _log_prob_enumerated)
        ]
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)
        # forward mode and vmap go through the same rule
        tangent = jnp.arange(9.0)
        _, jvp = jax.jit(
            lambda lg, t: jax.jvp(lambda x: _log_prob_integral(*split(x)), (lg,), (t,))
        )(logits, tangent)
        np.testing.assert_allclose(jvp, grads[1] @ tangent, rtol=1e-9)
        batched = jax.jit(jax.vmap(jax.grad(lambda lg: _log_prob_integral(*split(lg)))))(
            jnp.stack([logits, logits + 1.0])
        )
        np.testing.assert_allclose(batched, jnp.stack([grads[1]] * 2), rtol=1e-9, atol=1e-12)


def test_compiled_program_does_not_grow_with_k():
    """K = 1000: the lowered programs of sample (hard) and log_prob have the same number of
    operations at k = 10 and k = 500 (the relaxation's scan was fully unrolled: 31 s to compile
    at k = 999). Deterministic, unlike a timing."""
    logits = jnp.zeros((4, 1000))

    def size(k):
        def sample(lg, key):
            return nr.GumbelSoftmaxTopK(k, 0.5, logits=lg, hard=True).sample(key)

        def log_prob(lg, v):
            return nr.GumbelSoftmaxTopK(k, 0.5, logits=lg).log_prob(v)

        value = jnp.zeros((4, 1000)).at[:, :k].set(1.0)
        return [
            len(jax.jit(sample).lower(logits, random.PRNGKey(0)).as_text().splitlines()),
            len(jax.jit(log_prob).lower(logits, value).as_text().splitlines()),
        ]

    assert size(10) == size(500)


def _compiled_bytes(f, *args):
    """Temporaries plus outputs of ``jit(f)`` by XLA's memory analysis (compiled, not run)."""
    m = jax.jit(f).lower(*args).compile().memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes


def test_log_prob_memory_is_linear_in_batch_times_k():
    """K = 1000, k = 500: peak memory of log_prob and of its gradient grows like batch x K with
    a small constant (it was 269 MiB at batch 64, 1,100 float32 (batch, K) arrays)."""
    num, k = 1000, 500

    def log_prob(lg, v):
        return nr.GumbelSoftmaxTopK(k, 0.5, logits=lg).log_prob(v)

    def grad(lg, v):
        return jax.grad(lambda lg: jnp.sum(log_prob(lg, v)))(lg)

    for f in (log_prob, grad):
        peak = {}
        for batch in (64, 128):
            value = jnp.zeros((batch, num)).at[:, :k].set(1.0)
            peak[batch] = _compiled_bytes(f, jnp.zeros((batch, num)), value)
            assert peak[batch] <= 16 * batch * num * 4, (f.__name__, batch, peak[batch])
        assert 1.8 <= peak[128] / peak[64] <= 2.2, (f.__name__, peak)


@pytest.mark.parametrize("k", [3, 6])
def test_log_prob_broadcasts_one_value_against_batched_logits(k):
    """One k-hot value against a batch of logits, and a sample axis against it, broadcast like
    every NumPyro distribution (it raised a take_along_axis error)."""
    logits = random.normal(random.PRNGKey(0), (4, 8))
    d = nr.GumbelSoftmaxTopK(k, 0.5, logits=logits)
    value = jnp.zeros(8).at[jnp.arange(k)].set(1.0)
    expected = d.log_prob(jnp.broadcast_to(value, (4, 8)))
    np.testing.assert_allclose(d.log_prob(value), expected, rtol=1e-6)
    values = jnp.stack([value, jnp.roll(value, 2)])[:, None, :]  # (2, 1, 8)
    lp = d.log_prob(values)
    assert lp.shape == (2, 4)
    np.testing.assert_allclose(lp[1], d.log_prob(jnp.broadcast_to(values[1], (4, 8))), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_is_computed_in_float32(dtype):
    """Half-precision parameters are promoted to float32 (library convention): the relaxation no
    longer picks one element again (an entry of 3.0 in float16), and subset_log_prob on
    half-precision logits equals the float32 result."""
    logits = jnp.array([20.0, 0.0, 0.0, 0.0, 0.0, -20.0])
    key = random.PRNGKey(0)
    half = nr.GumbelSoftmaxTopK(3, jnp.asarray(0.5, dtype), logits=logits.astype(dtype))
    full = nr.GumbelSoftmaxTopK(3, 0.5, logits=logits)
    x = half.sample(key, (1000,))
    assert x.dtype == jnp.float32
    np.testing.assert_array_equal(x, full.sample(key, (1000,)))
    assert float(x.max()) <= 1.0 + 1e-6
    for k in (3, 5):
        value = jnp.zeros(6).at[jnp.arange(k)].set(1.0)
        lp = subset_log_prob(value.astype(dtype), logits.astype(dtype), k)
        assert lp.dtype == jnp.float32
        np.testing.assert_allclose(lp, subset_log_prob(value, logits, k), rtol=1e-6)


def test_infer_shapes_gives_the_k_hot_event():
    shapes = dict(temperature=(3, 1), logits=(2, 7))
    batch, event = nr.GumbelSoftmaxTopK.infer_shapes((), **shapes)
    d = nr.GumbelSoftmaxTopK(2, jnp.ones(shapes["temperature"]), logits=jnp.zeros(shapes["logits"]))
    assert (batch, event) == (d.batch_shape, d.event_shape) == ((3, 2), (7,))
    assert nr.GumbelSoftmaxTopK.infer_shapes((), (), (5,)) == ((), (5,))  # positional probs
