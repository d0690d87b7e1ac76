"""The binary family: conformance of every class, and the laws of the Bernoulli-type classes.

Gates with atoms (GaussianRelaxedBernoulli, HardConcrete), correlated gates, the logit-normal and
the KLs are checked in ``test_bernoulli_gates.py``. Statistical checks use fixed keys and
tolerances of 5 standard errors (or a goodness-of-fit p-value above 1e-3).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from conformance import Case, ConformanceSuite
from conftest import needs_numpyro_0_22
from jax import random
from scipy import stats

from numpyro_relax.distributions import (
    CorrelatedRelaxedBernoulli,
    GaussianRelaxedBernoulli,
    HardConcrete,
    LogitNormal,
    LogitRelaxedBernoulli,
    RelaxedBernoulliStraightThrough,
    StochasticTimesSmooth,
    StraightThroughBernoulli,
)
from numpyro_relax.distributions.util import logistic_noise

LOGITS = jnp.array([0.3, -1.0, 2.0])
PROBS = jnp.array([0.2, 0.7, 0.45])
TEMPS = jnp.array([0.5, 1.5, 0.8])
BAD_TEMPS = jnp.array([-1.0, 1.0, 1.0])
BAD_PROBS = jnp.array([0.2, 1.5, 0.4])
CORR = jnp.array(
    [
        [[1.0, 0.6, -0.2], [0.6, 1.0, 0.3], [-0.2, 0.3, 1.0]],
        [[1.0, -0.4, 0.1], [-0.4, 1.0, 0.5], [0.1, 0.5, 1.0]],
    ]
)
BAD_CORR = CORR.at[0, 0, 1].set(0.9)  # not symmetric
N = 20_000


@partial(jax.jit, static_argnums=2)
def _sample(d, key, n):
    """``d.sample(key, (n,))``, compiled once per class and shape (``d`` is a pytree argument)."""
    return d.sample(key, (n,))


class TestConformance(ConformanceSuite):
    cases = [
        Case(
            "st_bernoulli_probs",
            StraightThroughBernoulli,
            {"probs": PROBS},
            invalid={"probs": BAD_PROBS},
            continuous_sample=False,
            fd_log_prob=("probs",),
        ),
        Case(
            "relaxed_st",
            RelaxedBernoulliStraightThrough,
            {"temperature": TEMPS, "logits": LOGITS},
            invalid={"temperature": BAD_TEMPS},
            continuous_sample=False,
            fd_log_prob=("logits",),
        ),
        Case(
            "logit_relaxed_logits",
            LogitRelaxedBernoulli,
            {"temperature": TEMPS, "logits": LOGITS},
            invalid={"temperature": BAD_TEMPS},
            fd_sample=("logits", "temperature"),
            fd_log_prob=("logits", "temperature"),
        ),
        Case(
            "stochastic_times_smooth",
            StochasticTimesSmooth,
            {"probs": PROBS},
            invalid={"probs": BAD_PROBS},
            continuous_sample=False,
            fd_sample=("probs",),
            fd_log_prob=("probs",),
        ),
        Case(
            "gaussian_gate",
            GaussianRelaxedBernoulli,
            {"loc": jnp.array([0.5, 0.3, 0.7]), "scale": jnp.array([0.3, 0.25, 0.4])},
            invalid={"scale": jnp.array([0.3, 0.0, 0.4])},
            fd_sample=("loc", "scale"),
            fd_log_prob=("loc", "scale"),
        ),
        Case(
            "hard_concrete",
            HardConcrete,
            {
                "log_alpha": jnp.array([0.5, -0.3, 1.0]),
                "temperature": jnp.array([2 / 3, 0.5, 1.0]),
                "limit_low": jnp.array([-0.1, -0.2, -0.1]),
                "limit_high": jnp.array([1.1, 1.05, 1.2]),
            },
            invalid={
                "temperature": BAD_TEMPS,
                "limit_low": jnp.array([-0.1, 0.1, -0.1]),
                "limit_high": jnp.array([1.1, 0.9, 1.2]),
            },
            fd_sample=("log_alpha", "temperature", "limit_low", "limit_high"),
            fd_log_prob=("log_alpha", "temperature", "limit_low", "limit_high"),
        ),
        Case(
            "correlated_gates",
            CorrelatedRelaxedBernoulli,
            {
                "probs": jnp.array([[0.3, 0.6, 0.8], [0.5, 0.2, 0.4]]),
                "correlation": CORR,
                "temperature": jnp.array([0.5, 1.0]),
            },
            invalid={
                "correlation": BAD_CORR,
                "probs": jnp.array([[0.3, 1.6, 0.8], [0.5, 0.2, 0.4]]),
                "temperature": jnp.array([0.5, -1.0]),
            },
            fd_sample=("probs",),
            fd_log_prob=("probs",),
        ),
        Case(
            "logit_normal",
            LogitNormal,
            {"loc": jnp.array([0.0, 1.0, -2.0]), "scale": jnp.array([1.0, 0.5, 2.0])},
            invalid={"scale": jnp.array([1.0, -0.5, 2.0])},
            fd_sample=("loc", "scale"),
            fd_log_prob=("loc", "scale"),
        ),
    ]


# -- argument checks --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: StraightThroughBernoulli(**kw),
        lambda **kw: StochasticTimesSmooth(**kw),
        lambda **kw: RelaxedBernoulliStraightThrough(0.5, **kw),
        lambda **kw: LogitRelaxedBernoulli(0.5, **kw),
    ],
)
def test_exactly_one_of_probs_logits(make):
    with pytest.raises(ValueError, match="both"):
        make(probs=PROBS, logits=LOGITS)
    with pytest.raises(ValueError, match="neither"):
        make()


@pytest.mark.parametrize("cls", [RelaxedBernoulliStraightThrough, LogitRelaxedBernoulli])
@pytest.mark.parametrize("temperature", [0.0, -1.0])
@needs_numpyro_0_22
def test_non_positive_temperature(cls, temperature):
    with pytest.raises(ValueError, match="temperature"):
        cls(temperature, logits=LOGITS)


def test_incompatible_shapes():
    with pytest.raises(ValueError, match="temperature"):
        LogitRelaxedBernoulli(jnp.ones(2), logits=jnp.zeros(3))


@pytest.mark.parametrize("cls", [RelaxedBernoulliStraightThrough, LogitRelaxedBernoulli])
def test_infinite_or_subnormal_temperature_is_rejected_under_validation(cls):
    with pytest.raises(ValueError, match="temperature.* must be finite"):
        cls(jnp.inf, logits=LOGITS, validate_args=True)
    with pytest.raises(ValueError, match="temperature.* smallest normal float32 .*subnormal"):
        cls(1e-40, logits=LOGITS, validate_args=True)
    with numpyro.validation_enabled(False):  # as in NumPyro: anything positive constructs
        cls(jnp.inf, logits=LOGITS)
        cls(1e-40, logits=LOGITS)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_parameters_are_computed_in_float32(dtype):
    """Promoted to float32 (docs/decisions.md), so the results are the float32 ones."""
    half = LogitRelaxedBernoulli(jnp.asarray(0.05, dtype), logits=(10 * LOGITS).astype(dtype))
    ref = LogitRelaxedBernoulli(
        jnp.asarray(0.05, dtype).astype(jnp.float32),
        logits=(10 * LOGITS).astype(dtype).astype(jnp.float32),
    )
    key = random.PRNGKey(9)
    y = half.sample(key, (100,))
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, ref.sample(key, (100,)))
    np.testing.assert_array_equal(half.log_prob(y), ref.log_prob(y))


# -- straight-through -------------------------------------------------------------------------
def _five_se(freq, p, n):
    return 5 * np.sqrt(np.asarray(p) * (1 - np.asarray(p)) / n) + 1e-12


def test_straight_through_forward_binary_and_identity_gradient():
    d = StraightThroughBernoulli(probs=PROBS)
    x = _sample(d, random.PRNGKey(1), N)
    assert set(np.unique(np.asarray(x))) <= {0.0, 1.0}  # exactly binary, no 0.99999994
    freq = np.asarray(x.mean(0))
    np.testing.assert_array_less(np.abs(freq - PROBS), _five_se(freq, PROBS, N))

    g = jax.grad(lambda p: StraightThroughBernoulli(probs=p).sample(random.PRNGKey(2)).sum())(PROBS)
    np.testing.assert_array_equal(g, jnp.ones_like(PROBS))  # d value / d probs = 1
    g = jax.grad(lambda lg: StraightThroughBernoulli(logits=lg).sample(random.PRNGKey(2)).sum())(
        LOGITS
    )
    np.testing.assert_allclose(g, jax.nn.sigmoid(LOGITS) * jax.nn.sigmoid(-LOGITS), rtol=1e-6)


def test_straight_through_log_prob_is_bernoulli_pmf():
    d = StraightThroughBernoulli(probs=PROBS)
    for b in (0.0, 1.0):
        v = jnp.full(PROBS.shape, b)
        np.testing.assert_allclose(
            d.log_prob(v), stats.bernoulli.logpmf(int(b), np.asarray(PROBS)), rtol=1e-6
        )
    np.testing.assert_allclose(d.entropy(), stats.bernoulli.entropy(np.asarray(PROBS)), rtol=1e-6)
    np.testing.assert_allclose(d.variance, PROBS * (1 - PROBS), rtol=1e-6)
    np.testing.assert_array_equal(d.mode, (PROBS > 0.5).astype(jnp.float32))
    np.testing.assert_allclose(d.cdf(jnp.zeros(3)), 1 - PROBS, rtol=1e-6)
    np.testing.assert_array_equal(d.icdf(jnp.full(3, 0.5)), (PROBS > 0.5).astype(jnp.float32))


def test_relaxed_straight_through_forward_and_gradient():
    key = random.PRNGKey(3)
    d = RelaxedBernoulliStraightThrough(TEMPS, logits=LOGITS)
    x = _sample(d, key, N)
    assert set(np.unique(np.asarray(x))) <= {0.0, 1.0}
    p = jax.nn.sigmoid(LOGITS)
    np.testing.assert_array_less(np.abs(np.asarray(x.mean(0)) - p), _five_se(None, p, N))
    # the rounding does not depend on the temperature
    np.testing.assert_array_equal(
        _sample(RelaxedBernoulliStraightThrough(0.05, logits=LOGITS), key, N), x
    )
    # the gradient is that of the relaxed sample sigmoid((l + g) / t)
    g_noise = logistic_noise(key, (3,), jnp.float32)

    def soft(lg, t):
        return jnp.sum(jax.nn.sigmoid((lg + g_noise) / t))

    def hard(lg, t):
        return jnp.sum(RelaxedBernoulliStraightThrough(t, logits=lg).sample(key))

    for argnum in (0, 1):
        np.testing.assert_allclose(
            jax.grad(hard, argnum)(LOGITS, TEMPS),
            jax.grad(soft, argnum)(LOGITS, TEMPS),
            rtol=1e-6,
        )
    np.testing.assert_allclose(
        d.log_prob(jnp.ones(3)), jax.nn.log_sigmoid(LOGITS), rtol=1e-6, atol=1e-7
    )


# -- binary Concrete in logit space -----------------------------------------------------------
@pytest.mark.parametrize("temperature, logit", [(0.5, 0.7), (1.0, -1.5), (0.1, 2.0)])
def test_logit_relaxed_against_logistic(temperature, logit):
    d = LogitRelaxedBernoulli(temperature, logits=logit)
    ref = stats.logistic(loc=logit / temperature, scale=1 / temperature)
    y = np.asarray(_sample(d, random.PRNGKey(4), N), np.float64)
    assert stats.kstest(y, ref.cdf).pvalue > 1e-3
    grid = jnp.linspace(-10, 10, 41)
    np.testing.assert_allclose(d.log_prob(grid), ref.logpdf(np.asarray(grid)), rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(d.cdf(grid), ref.cdf(np.asarray(grid)), rtol=1e-5, atol=1e-6)
    q = jnp.array([0.01, 0.3, 0.5, 0.9])
    np.testing.assert_allclose(d.icdf(q), ref.ppf(np.asarray(q)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d.mean, ref.mean(), rtol=1e-6)
    np.testing.assert_allclose(d.variance, ref.var(), rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), ref.entropy(), rtol=1e-6)
    # rounding follows the Bernoulli law at any temperature
    freq = float(np.mean(y > 0))
    p = float(jax.nn.sigmoid(logit))
    assert abs(freq - p) < _five_se(None, p, N)


def test_logit_relaxed_matches_relaxed_bernoulli_density():
    """Change of variables x = sigmoid(y) against NumPyro's RelaxedBernoulliLogits."""
    t, lg = 0.7, jnp.array([0.4, -1.2])
    y = LogitRelaxedBernoulli(t, logits=lg).sample(random.PRNGKey(5), (50,))
    y = jnp.clip(y, -8, 8)  # keep sigmoid(y) away from float32 rounding to 0 or 1
    x = jax.nn.sigmoid(y)
    lp_x = dist.RelaxedBernoulliLogits(t, lg).log_prob(x)
    lp_y = LogitRelaxedBernoulli(t, logits=lg).log_prob(y)
    np.testing.assert_allclose(
        lp_y, lp_x + jax.nn.log_sigmoid(y) + jax.nn.log_sigmoid(-y), rtol=1e-4, atol=1e-4
    )


# -- stochastic times smooth ------------------------------------------------------------------
def test_stochastic_times_smooth_law():
    d = StochasticTimesSmooth(probs=PROBS)
    q = np.sqrt(np.asarray(PROBS))
    x = np.asarray(_sample(d, random.PRNGKey(6), N))
    on = x > 0
    # values are exactly 0 or sqrt(p)
    np.testing.assert_array_equal(x, np.where(on, np.asarray(d.gate_prob), 0.0))
    np.testing.assert_allclose(d.gate_prob, q, rtol=1e-6)
    np.testing.assert_array_less(np.abs(on.mean(0) - q), _five_se(None, q, N))
    # E[z] = p
    se = x.std(0) / np.sqrt(N)
    np.testing.assert_array_less(np.abs(x.mean(0) - np.asarray(PROBS)), 5 * se)
    np.testing.assert_allclose(d.mean, PROBS, rtol=1e-6)
    np.testing.assert_allclose(d.variance, x.var(0), rtol=0.05)
    # its own two-point pmf, not Bernoulli(p)'s
    lp0 = d.log_prob(jnp.zeros(3))
    lp1 = d.log_prob(jnp.asarray(q))
    np.testing.assert_allclose(lp0, np.log1p(-q), rtol=1e-6)
    np.testing.assert_allclose(lp1, np.log(q), rtol=1e-6)
    np.testing.assert_allclose(jnp.exp(lp0) + jnp.exp(lp1), 1.0, rtol=1e-6)
    # a positive value off by rounding is scored on the nonzero atom
    np.testing.assert_allclose(d.log_prob(jnp.asarray(q) * (1 + 1e-6)), lp1, rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), stats.bernoulli.entropy(q), rtol=1e-5)
    np.testing.assert_allclose(d.cdf(jnp.asarray(q) / 2), 1 - q, rtol=1e-6)


def test_stochastic_times_smooth_gradient():
    key = random.PRNGKey(7)

    def f(p):
        return StochasticTimesSmooth(probs=p).sample(key)

    b = (f(PROBS) > 0).astype(jnp.float32)
    np.testing.assert_allclose(
        jax.jacobian(f)(PROBS), jnp.diag(b / (2 * jnp.sqrt(PROBS))), rtol=1e-6
    )


# -- float32 stability ------------------------------------------------------------------------
EXTREME = jnp.array([-30.0, -5.0, 0.0, 5.0, 30.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda lg, t: StraightThroughBernoulli(logits=lg),
        lambda lg, t: StochasticTimesSmooth(logits=lg),
        lambda lg, t: RelaxedBernoulliStraightThrough(t, logits=lg),
        lambda lg, t: LogitRelaxedBernoulli(t, logits=lg),
        lambda lg, t: GaussianRelaxedBernoulli(lg, t),
        lambda lg, t: HardConcrete(lg, t),
        lambda lg, t: LogitNormal(lg, t),
    ],
    ids=[
        "st",
        "sts",
        "relaxed_st",
        "logit_relaxed",
        "gaussian_gate",
        "hard_concrete",
        "logitnormal",
    ],
)
def test_float32_stability(make):
    """Logits (locations) up to +-30 and temperatures (scales) 0.01 and 1: all finite."""
    key = random.PRNGKey(8)
    logits = jnp.broadcast_to(EXTREME, (2, 5))
    temps = jnp.broadcast_to(jnp.array([[0.01], [1.0]], jnp.float32), (2, 5))

    def run(lg, t):
        d = make(lg, t)
        x, inter = d.sample_with_intermediates(key, (100,))
        lp = d.log_prob(x, inter) if inter else d.log_prob(x)
        return x, lp

    @jax.jit
    def everything(lg, t):
        grads = [jax.grad(lambda *a, o=o: jnp.sum(run(*a)[o]), (0, 1))(lg, t) for o in (0, 1)]
        return run(lg, t), grads

    (x, lp), grads = everything(logits, temps)
    assert x.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(x))) and bool(jnp.all(jnp.isfinite(lp)))
    for g in jax.tree.leaves(grads):
        assert bool(jnp.all(jnp.isfinite(g)))


def test_elementwise_log_densities_against_scipy():
    """The two closed forms the binary log_probs are built from, in float32 at extreme logits."""
    from numpyro_relax.distributions.util import bernoulli_log_pmf, log_sigmoid_both

    x = np.array([-90.0, -30.0, -3.0, -1e-6, 0.0, 1e-6, 0.7, 30.0, 90.0], np.float32)
    np.testing.assert_allclose(
        log_sigmoid_both(jnp.asarray(x)), stats.logistic.logpdf(x.astype(np.float64)), rtol=1e-6
    )
    p = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    for b in (0.0, 1.0):
        want = np.where(b == 1.0, -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x))
        np.testing.assert_allclose(
            bernoulli_log_pmf(b, jnp.asarray(x)), want, rtol=1e-6, atol=1e-30
        )
        mid = np.abs(x) < 30  # where scipy's pmf is representable
        np.testing.assert_allclose(
            np.asarray(bernoulli_log_pmf(b, jnp.asarray(x)))[mid],
            stats.bernoulli.logpmf(b, p[mid]),
            rtol=1e-6,
        )
    # derivatives: value - sigmoid(l) in the logits (also at l = 0 exactly), l in the value
    grad = jax.grad(bernoulli_log_pmf, argnums=(0, 1))
    for b, logit in ((0.0, 0.0), (1.0, 0.0), (0.0, 2.0), (1.0, -3.0), (0.3, 0.7)):
        d_value, d_logit = grad(b, logit)
        np.testing.assert_allclose(d_logit, b - 1.0 / (1.0 + np.exp(-logit)), rtol=1e-6)
        np.testing.assert_allclose(d_value, logit, rtol=1e-6)


# -- masked (infinite) logits ------------------------------------------------------------------
INF_MASK = jnp.array([True, True, False, False])
INF_LOGITS = jnp.array([-jnp.inf, jnp.inf, 0.3, -2.0])


@pytest.mark.parametrize(
    "make",
    [
        lambda logits: StraightThroughBernoulli(logits=logits),
        lambda logits: RelaxedBernoulliStraightThrough(0.5, logits=logits),
    ],
    ids=["straight_through", "relaxed_straight_through"],
)
@needs_numpyro_0_22
def test_infinite_logits_are_finite_like_numpyro_bernoulli(make):
    """+-inf logits (certain outcomes, validation off): log_prob, samples, moments, entropy and
    the KLs are NumPyro's BernoulliLogits values, finite where it is; gradients w.r.t. the finite
    logits are finite."""
    from numpyro.distributions.kl import kl_divergence
    from scipy import special

    import numpyro_relax.distributions.kl_bernoulli  # noqa: F401  (registers the KLs)

    with numpyro.validation_enabled(False):
        d = make(INF_LOGITS)
        ref = dist.BernoulliLogits(INF_LOGITS)
        for v in (0.0, 1.0):
            value = jnp.full(4, v)
            np.testing.assert_allclose(d.log_prob(value), ref.log_prob(value), rtol=1e-6)
        np.testing.assert_allclose(d.mean, ref.mean, rtol=1e-6)
        np.testing.assert_allclose(d.variance, ref.variance, rtol=1e-6)
        p = np.asarray(ref.probs, np.float64)
        np.testing.assert_allclose(d.entropy(), special.entr(p) + special.entr(1 - p), rtol=1e-5)
        x = np.asarray(d.sample(random.PRNGKey(0), (1000,)))
        assert np.all(x[:, 0] == 0) and np.all(x[:, 1] == 1)
        for q_logits in (INF_LOGITS, jnp.array([-jnp.inf, jnp.inf, 1.0, 0.5]), jnp.zeros(4)):
            q = np.asarray(dist.BernoulliLogits(q_logits).probs, np.float64)
            kl = special.rel_entr(p, q) + special.rel_entr(1 - p, 1 - q)
            np.testing.assert_allclose(
                kl_divergence(d, dist.BernoulliLogits(q_logits)), kl, rtol=1e-5, atol=1e-7
            )

        def loss(free):
            q = make(jnp.where(INF_MASK, INF_LOGITS, free))
            z = q.sample(random.PRNGKey(1), (64,))
            prior = dist.BernoulliLogits(jnp.array([-jnp.inf, jnp.inf, 0.0, 0.0]))
            out = jnp.sum(z * jnp.arange(4.0)) + jnp.sum(q.log_prob(z)) + jnp.sum(q.entropy())
            return out + jnp.sum(kl_divergence(q, prior)) + jnp.sum(q.mean + q.variance)

        grad = np.asarray(jax.grad(loss)(jnp.array([0.5, -0.5, 0.3, -2.0])))
        assert np.all(np.isfinite(grad)) and np.all(grad[np.asarray(INF_MASK)] == 0)
