"""Correctness of the one-hot family: densities, laws, limits, gradients, stability, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from conformance import Case, ConformanceSuite
from conftest import needs_numpyro_0_22
from jax import random
from numpyro.distributions.kl import kl_divergence
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.util import log_density
from scipy import special, stats

import numpyro_relax as nr

LOGITS = jnp.array([[0.3, -1.0, 2.0], [1.0, 0.0, -0.5]])
PROBS = jax.nn.softmax(LOGITS)
TEMPS = jnp.array([0.5, 1.5])
BAD_TEMPS = jnp.array([-1.0, 1.0])
VALUES = jnp.array([[0.0, 1.0, 2.5], [-1.0, 0.5, 3.0]])
BAD_PROBS = jnp.array([[0.5, 0.6, 0.1], [0.2, 0.3, 0.5]])


def _support_point(d, key, shape):
    return jnp.sum(nr.OneHotCategorical(logits=d.logits).sample(key, shape) * d.values, -1)


class TestConformance(ConformanceSuite):
    cases = [
        Case(
            "one_hot_logits",
            nr.OneHotCategorical,
            {"logits": LOGITS},
            continuous_sample=False,
            fd_log_prob=("logits",),
        ),
        Case(
            "one_hot_probs",
            nr.OneHotCategorical,
            {"probs": PROBS},
            invalid={"probs": BAD_PROBS},
            continuous_sample=False,
        ),
        Case(
            "exp_relaxed",
            nr.ExpRelaxedOneHotCategorical,
            {"temperature": TEMPS, "logits": LOGITS},
            invalid={"temperature": BAD_TEMPS},
            fd_sample=("logits", "temperature"),
            fd_log_prob=("logits", "temperature"),
        ),
        Case(
            "relaxed_logits",
            nr.RelaxedOneHotCategorical,
            {"temperature": TEMPS, "logits": LOGITS},
            invalid={"temperature": BAD_TEMPS},
            fd_sample=("logits", "temperature"),
            fd_log_prob=("logits", "temperature"),
        ),
        Case(
            "relaxed_probs",
            nr.RelaxedOneHotCategorical,
            {"temperature": TEMPS, "probs": PROBS},
            invalid={"probs": BAD_PROBS},
        ),
        Case(
            "straight_through",
            nr.RelaxedOneHotCategoricalStraightThrough,
            {"temperature": TEMPS, "logits": LOGITS},
            invalid={"temperature": BAD_TEMPS},
            continuous_sample=False,
            fd_log_prob=("logits",),
        ),
        Case(
            "decoupled",
            nr.DecoupledStraightThroughGumbelSoftmax,
            {"temperature_forward": TEMPS, "temperature_backward": TEMPS[::-1], "logits": LOGITS},
            invalid={"temperature_backward": BAD_TEMPS},
            continuous_sample=False,
            fd_log_prob=("logits", "temperature_forward"),
        ),
        Case(
            "generalized_soft",
            nr.GeneralizedGumbelSoftmax,
            {"values": VALUES, "temperature": TEMPS, "logits": LOGITS},
            invalid={"temperature": BAD_TEMPS},
            fd_sample=("logits", "temperature", "values"),
            fd_log_prob=("logits",),
            value=_support_point,
        ),
        Case(
            "generalized_hard",
            lambda **kw: nr.GeneralizedGumbelSoftmax(hard=True, **kw),
            {"values": VALUES, "temperature": TEMPS, "probs": PROBS},
            invalid={"probs": BAD_PROBS},
            continuous_sample=False,
        ),
    ]


# --- densities against independent computations ---------------------------------------------


def test_concrete_k2_equals_numpyro_relaxed_bernoulli():
    """K=2 Concrete at (x, 1-x) is NumPyro's RelaxedBernoulli (logistic + sigmoid) at x."""
    with jax.enable_x64(True):
        logits = jnp.array([0.7, -0.4])
        x = jnp.linspace(0.01, 0.99, 41)
        for t in [0.1, 0.5, 2.0]:
            d = nr.RelaxedOneHotCategorical(t, logits=logits)
            ours = d.log_prob(jnp.stack([x, 1 - x], -1))
            ref = dist.RelaxedBernoulliLogits(t, logits[0] - logits[1]).log_prob(x)
            np.testing.assert_allclose(ours, ref, rtol=1e-10)


def _alr_grid(half_width, n):
    u = jnp.linspace(-half_width, half_width, n)
    u1, u2 = jnp.meshgrid(u, u, indexing="ij")
    z = jnp.stack([u1, u2, jnp.zeros_like(u1)], -1)
    return jax.nn.log_softmax(z, -1), (u[1] - u[0]) ** 2


@pytest.mark.parametrize("t", [0.3, 1.0])
def test_concrete_k3_integrates_to_one(t):
    """Grid integration in ALR coordinates (|Jacobian| = prod_k x_k) gives mass 1."""
    with jax.enable_x64(True):
        logits = jnp.array([0.5, -1.0, 1.2])
        d = nr.RelaxedOneHotCategorical(t, logits=logits)
        y, cell = _alr_grid(40.0 / t, 1201)
        integrand = jnp.exp(d.log_prob(jnp.exp(y), [y]) + jnp.sum(y, -1))
        np.testing.assert_allclose(jnp.sum(integrand) * cell, 1.0, atol=2e-4)
        # ExpConcrete: its Lebesgue density in (y_1, y_2) is log_prob - y_K, and
        # |d(y_1, y_2)/d(u_1, u_2)| = x_K = exp(y_K).
        e = nr.ExpRelaxedOneHotCategorical(t, logits=logits)
        integrand = jnp.exp((e.log_prob(y) - y[..., -1]) + y[..., -1])
        np.testing.assert_allclose(jnp.sum(integrand) * cell, 1.0, atol=2e-4)


def test_samples_match_density_expectations():
    """MC means of test functions agree with the same expectations under log_prob (quadrature)."""
    t = 0.6
    logits = jnp.array([0.5, -1.0, 1.2])
    d = nr.RelaxedOneHotCategorical(t, logits=logits)
    x = np.asarray(d.sample(random.PRNGKey(3), (40000,)), np.float64)
    with jax.enable_x64(True):
        d64 = nr.RelaxedOneHotCategorical(t, logits=jnp.asarray(logits, jnp.float64))
        y, cell = _alr_grid(40.0 / t, 1201)
        w = jnp.exp(d64.log_prob(jnp.exp(y), [y]) + jnp.sum(y, -1)) * cell
        xs = jnp.exp(y)
        for h in [lambda v: v[..., 0], lambda v: v[..., 1] ** 2, lambda v: v[..., 0] * v[..., 2]]:
            exact = float(jnp.sum(w * h(xs)))
            vals = h(x)
            se = vals.std() / np.sqrt(len(vals))
            assert abs(vals.mean() - exact) < 5 * se


def test_binary_concrete_cdf_ks():
    """K=2: P(x_1 <= s) = sigmoid(t logit(s) - (l_1 - l_2)); KS test of the sampler."""
    t, logits = 0.4, jnp.array([0.8, -0.3])
    x = nr.RelaxedOneHotCategorical(t, logits=logits).sample(random.PRNGKey(7), (20000,))
    x1 = np.asarray(x, np.float64)[:, 0]
    diff = float(logits[0] - logits[1])

    def cdf(s):
        s = np.clip(s, 1e-300, 1 - 1e-16)
        return 1 / (1 + np.exp(-(t * (np.log(s) - np.log1p(-s)) - diff)))

    assert stats.kstest(x1, cdf).pvalue > 1e-3


def _chi2_pvalue(counts, probs):
    probs = np.asarray(probs, np.float64)
    expected = probs / probs.sum() * counts.sum()
    return stats.chisquare(counts, expected).pvalue


@pytest.mark.parametrize(
    "make",
    [
        lambda lg: nr.RelaxedOneHotCategorical(0.3, logits=lg),
        lambda lg: nr.ExpRelaxedOneHotCategorical(2.0, logits=lg),
        lambda lg: nr.RelaxedOneHotCategoricalStraightThrough(0.3, logits=lg),
        lambda lg: nr.OneHotCategorical(logits=lg),
    ],
)
def test_argmax_follows_categorical(make):
    logits = jnp.array([0.5, -1.0, 1.2, 0.0])
    x = make(logits).sample(random.PRNGKey(11), (20000,))
    counts = np.bincount(np.asarray(jnp.argmax(x, -1)), minlength=4)
    assert _chi2_pvalue(counts, jax.nn.softmax(logits)) > 1e-3


def test_low_temperature_limit_is_the_discrete_law():
    logits = jnp.array([0.5, -1.0, 1.2])
    x = nr.RelaxedOneHotCategorical(0.01, logits=logits).sample(random.PRNGKey(5), (20000,))
    assert float(jnp.mean(jnp.max(x, -1) > 0.99)) > 0.97
    p = jax.nn.softmax(logits)
    se = jnp.sqrt(p * (1 - p) / x.shape[0])
    assert bool(jnp.all(jnp.abs(x.mean(0) - p) < 5 * se + 1e-3))


# --- straight-through and decoupled ----------------------------------------------------------


def test_straight_through_forward_exact_backward_soft():
    logits = jnp.array([[0.5, -1.0, 1.2], [3.0, 0.1, -2.0]])
    key = random.PRNGKey(2)
    w = random.normal(random.PRNGKey(9), (16, 2, 3))

    def hard(lg):
        return nr.RelaxedOneHotCategoricalStraightThrough(0.5, logits=lg).sample(key, (16,))

    def soft(lg):
        return nr.RelaxedOneHotCategorical(0.5, logits=lg).sample(key, (16,))

    z = hard(logits)
    assert set(np.unique(np.asarray(z))) <= {0.0, 1.0}
    np.testing.assert_array_equal(z.sum(-1), 1.0)
    np.testing.assert_array_equal(z, jax.nn.one_hot(jnp.argmax(soft(logits), -1), 3))
    g_hard = jax.grad(lambda lg: jnp.sum(w * hard(lg)))(logits)
    g_soft = jax.grad(lambda lg: jnp.sum(w * soft(lg)))(logits)
    np.testing.assert_allclose(g_hard, g_soft, rtol=1e-5, atol=1e-7)
    d = nr.RelaxedOneHotCategoricalStraightThrough(0.5, logits=logits)
    ref = dist.Categorical(logits=logits).log_prob(jnp.argmax(z, -1))
    np.testing.assert_allclose(d.log_prob(z), ref, rtol=1e-5)


def test_decoupled_forward_law_depends_on_forward_temperature():
    logits = jnp.array([0.5, -1.0, 1.2, 0.0])
    for tf in [0.5, 2.0]:
        d = nr.DecoupledStraightThroughGumbelSoftmax(tf, 1.0, logits=logits)
        z = d.sample(random.PRNGKey(13), (20000,))
        assert set(np.unique(np.asarray(z))) <= {0.0, 1.0}
        counts = np.asarray(z.sum(0))
        assert _chi2_pvalue(counts, jax.nn.softmax(logits / tf)) > 1e-3
        np.testing.assert_allclose(d.mean, jax.nn.softmax(logits / tf), rtol=1e-6)


def test_decoupled_backward_temperature_shapes_the_gradient():
    logits = jnp.array([0.5, -1.0, 1.2, 0.0])
    key = random.PRNGKey(4)
    w = random.normal(random.PRNGKey(8), (8, 4))

    def grad(tf, tb):
        def f(lg):
            d = nr.DecoupledStraightThroughGumbelSoftmax(tf, tb, logits=lg)
            return jnp.sum(w * d.sample(key, (8,)))

        return jax.grad(f)(logits)

    # tau_f = 1 is the straight-through Gumbel-softmax at temperature tau_b: same values, grads
    for tb in [0.3, 2.0]:

        def st(lg, tb=tb):
            return nr.RelaxedOneHotCategoricalStraightThrough(tb, logits=lg).sample(key, (8,))

        np.testing.assert_array_equal(
            nr.DecoupledStraightThroughGumbelSoftmax(1.0, tb, logits=logits).sample(key, (8,)),
            st(logits),
        )
        np.testing.assert_allclose(
            grad(1.0, tb),
            jax.grad(lambda lg, st=st: jnp.sum(w * st(lg)))(logits),
            rtol=1e-5,
            atol=1e-6,
        )
    assert not np.allclose(grad(1.0, 0.3), grad(1.0, 2.0), atol=1e-3)
    assert not np.allclose(grad(0.5, 1.0), grad(2.0, 1.0), atol=1e-3)


# --- one-hot categorical -----------------------------------------------------------------------


def test_one_hot_categorical_against_numpyro_categorical():
    d = nr.OneHotCategorical(logits=LOGITS)
    ref = dist.Categorical(logits=LOGITS)
    support = d.enumerate_support()
    assert support.shape == (3, 2, 3)
    lp = d.log_prob(support)
    np.testing.assert_allclose(jnp.exp(lp).sum(0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(lp, ref.log_prob(ref.enumerate_support()), rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), ref.entropy(), rtol=1e-6)
    np.testing.assert_allclose(d.mean, ref.probs, rtol=1e-6)
    np.testing.assert_allclose(d.variance, ref.probs * (1 - ref.probs), rtol=1e-6)
    np.testing.assert_array_equal(d.mode, jax.nn.one_hot(jnp.argmax(ref.probs, -1), 3))


def test_kl_registrations_are_the_categorical_kl():
    q_logits = jnp.array([[0.0, 0.0, 0.0], [2.0, -1.0, 0.5]])
    ref = jnp.array(stats.entropy(np.asarray(PROBS).T, np.asarray(jax.nn.softmax(q_logits)).T))
    prior = nr.OneHotCategorical(logits=q_logits)
    for p in [
        nr.OneHotCategorical(logits=LOGITS),
        nr.RelaxedOneHotCategoricalStraightThrough(0.5, logits=LOGITS),
        nr.DecoupledStraightThroughGumbelSoftmax(1.0, 0.3, logits=LOGITS),
    ]:
        np.testing.assert_allclose(kl_divergence(p, prior), ref, rtol=1e-5)
        # through expand / to_event too
        kl = kl_divergence(p.expand((4, 2)).to_event(1), prior.expand((4, 2)).to_event(1))
        np.testing.assert_allclose(kl, jnp.broadcast_to(ref.sum(), (4,)), rtol=1e-5)
    d = nr.DecoupledStraightThroughGumbelSoftmax(2.0, 0.3, logits=LOGITS)
    p2, q2 = jax.nn.softmax(LOGITS / 2), jax.nn.softmax(q_logits)
    ref2 = jnp.array(stats.entropy(np.asarray(p2).T, np.asarray(q2).T))
    np.testing.assert_allclose(kl_divergence(d, prior), ref2, rtol=1e-5)


# --- generalized Gumbel-softmax ------------------------------------------------------------------


def test_generalized_from_poisson_truncation_and_law():
    rate = jnp.array([3.0, 7.5])
    eta = 1e-4
    g = nr.GeneralizedGumbelSoftmax.from_discrete(dist.Poisson(rate), 0.5, eta=eta, hard=True)
    n = g.values.shape[-1]
    np.testing.assert_array_equal(g.values[0], jnp.arange(n))
    mass = stats.poisson.cdf(n - 1, np.asarray(rate))
    assert np.all(mass >= 1 - eta) and stats.poisson.cdf(n - 2, float(rate.max())) < 1 - eta
    # log_prob is the truncated, renormalised Poisson pmf
    v = jnp.arange(n, dtype=jnp.float32)[:, None]
    np.testing.assert_allclose(
        g.log_prob(v),
        stats.poisson.logpmf(np.asarray(v), np.asarray(rate)) - np.log(mass),
        atol=1e-5,
    )
    # hard samples are exactly values and follow the pmf
    z = np.asarray(g.sample(random.PRNGKey(21), (20000,)))
    assert np.all(z == np.round(z))
    for i in range(2):
        counts = np.bincount(z[:, i].astype(int), minlength=n)
        p = np.exp(np.asarray(g.log_prob(v))[:, i])
        keep = p * z.shape[0] > 5  # pool the tail for the chi-square test
        counts = np.append(counts[keep], counts[~keep].sum())
        p = np.append(p[keep], p[~keep].sum())
        assert _chi2_pvalue(counts, p) > 1e-3


def test_generalized_soft_values_and_errors():
    g = nr.GeneralizedGumbelSoftmax(
        jnp.array([-1.0, 0.5, 4.0]), 0.2, logits=jnp.array([0.1, 0.2, 0.3])
    )
    z = g.sample(random.PRNGKey(0), (1000,))
    assert bool(jnp.all((z >= -1) & (z <= 4)))
    with pytest.raises(ValueError, match="relaxed value"):
        g.log_prob(z)
    member = np.isin(np.asarray(z), np.asarray(g.values))
    assert (~member).sum() > 900
    assert np.isnan(np.asarray(jax.jit(g.log_prob)(z))[~member]).all()
    np.testing.assert_allclose(
        g.log_prob(jnp.array(0.5)), jax.nn.log_softmax(g.logits)[1], rtol=1e-6
    )
    with pytest.raises(ValueError, match="values"):
        nr.GeneralizedGumbelSoftmax(jnp.array([0.0, 1.0]), 0.5, logits=jnp.zeros(3))
    with pytest.raises(ValueError, match="discrete"):
        nr.GeneralizedGumbelSoftmax.from_discrete(dist.Normal(0.0, 1.0), 0.5)


def test_generalized_kl_is_discrete_kl():
    p = nr.GeneralizedGumbelSoftmax.from_discrete(dist.Binomial(6, 0.3), 0.5)
    q = nr.GeneralizedGumbelSoftmax.from_discrete(dist.Binomial(6, 0.6), 0.5)
    pp, qq = (np.asarray(jax.nn.softmax(d.logits), np.float64) for d in (p, q))
    np.testing.assert_allclose(kl_divergence(p, q), stats.entropy(pp, qq), rtol=1e-5)
    r = nr.GeneralizedGumbelSoftmax(jnp.arange(7.0) * 2, 0.5, logits=q.logits)
    with pytest.raises(ValueError, match="values"):
        kl_divergence(p, r)


# --- stability ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        nr.ExpRelaxedOneHotCategorical,
        nr.RelaxedOneHotCategorical,
        nr.RelaxedOneHotCategoricalStraightThrough,
    ],
)
def test_float32_low_temperature_extreme_logits(cls):
    logits = jnp.array([[30.0, -30.0, 0.0, 5.0], [-30.0, -30.0, 30.0, 29.0]], jnp.float32)
    t = 0.01

    def model():
        numpyro.sample("z", cls(t, logits=logits))

    key = random.PRNGKey(0)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, key)).get_trace()
    assert bool(jnp.all(jnp.isfinite(tr["z"]["value"])))
    # inside a trace the log density uses the log-space intermediate: finite at the vertices
    lp, _ = log_density(numpyro.handlers.seed(model, key), (), {}, {})
    assert np.isfinite(float(lp))

    def loss(lg, tt):
        d = cls(tt, logits=lg)
        x, inter = d.sample_with_intermediates(key, (64,))
        return jnp.sum(d.log_prob(x, inter) if inter else d.log_prob(x)) + jnp.sum(
            x * jnp.arange(4.0)
        )

    val, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(logits, t)
    assert np.isfinite(float(val))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)


# --- argument errors ---------------------------------------------------------------------------


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="probs.*logits"):
        nr.RelaxedOneHotCategorical(0.5)
    with pytest.raises(ValueError, match="probs.*logits"):
        nr.OneHotCategorical(probs=PROBS, logits=LOGITS)
    with pytest.raises(ValueError, match="temperature"):
        nr.RelaxedOneHotCategorical(0.0, logits=LOGITS)
    with pytest.raises(ValueError, match="temperature_forward"):
        nr.DecoupledStraightThroughGumbelSoftmax(-1.0, 1.0, logits=LOGITS)
    with pytest.raises(ValueError, match="temperature"):
        nr.RelaxedOneHotCategorical(jnp.ones(3), logits=LOGITS)
    with pytest.raises(ValueError, match="logits"):
        nr.ExpRelaxedOneHotCategorical(0.5, logits=1.0)


TEMPERED = {
    "relaxed": lambda t, **kw: nr.RelaxedOneHotCategorical(t, logits=LOGITS, **kw),
    "straight_through": lambda t, **kw: nr.RelaxedOneHotCategoricalStraightThrough(
        t, logits=LOGITS, **kw
    ),
    "decoupled_backward": lambda t, **kw: nr.DecoupledStraightThroughGumbelSoftmax(
        1.0, t, logits=LOGITS, **kw
    ),
    "generalized": lambda t, **kw: nr.GeneralizedGumbelSoftmax(VALUES, t, logits=LOGITS, **kw),
}


@pytest.mark.parametrize("make", list(TEMPERED.values()), ids=list(TEMPERED))
def test_infinite_or_subnormal_temperature_is_rejected_under_validation(make):
    # inf made the density NaN; a subnormal is flushed to 0 by XLA (it was called "not positive")
    with pytest.raises(ValueError, match="temperature.* must be finite"):
        make(jnp.inf, validate_args=True)
    with pytest.raises(ValueError, match="temperature.* smallest normal float32 .*subnormal"):
        make(1e-40, validate_args=True)
    make(float(jnp.finfo(jnp.float32).tiny), validate_args=True)  # the smallest normal is fine
    # without validation any positive value constructs, as in NumPyro
    with numpyro.validation_enabled(False):
        make(jnp.inf)
        make(1e-40)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_parameters_are_computed_in_float32(dtype):
    """Half-precision parameters are promoted to float32 (docs/decisions.md): samples and
    densities are those of the float32 parameters, finite at low temperature."""
    half = nr.RelaxedOneHotCategorical(jnp.asarray(0.1, dtype), logits=(3 * LOGITS).astype(dtype))
    ref = nr.RelaxedOneHotCategorical(
        jnp.asarray(0.1, dtype).astype(jnp.float32),
        logits=(3 * LOGITS).astype(dtype).astype(jnp.float32),
    )
    key = random.PRNGKey(5)
    x = half.sample(key, (200,))
    assert x.dtype == jnp.float32 and half.logits.dtype == jnp.float32
    np.testing.assert_array_equal(x, ref.sample(key, (200,)))
    lp = half.log_prob(x)
    np.testing.assert_array_equal(lp, ref.log_prob(x))
    assert bool(jnp.all(jnp.isfinite(lp)))


# --- SVI smoke test ----------------------------------------------------------------------------


def test_svi_recovers_the_category():
    """A guide with a relaxed one-hot latent finds the component that generated the data."""
    centres = jnp.array([-2.0, 0.0, 2.0])
    data = 2.0 + 0.3 * random.normal(random.PRNGKey(1), (20,))

    def model(y):
        z = numpyro.sample("z", nr.RelaxedOneHotCategorical(0.5, probs=jnp.ones(3) / 3))
        numpyro.sample("y", dist.Normal(jnp.dot(z, centres), 0.3), obs=y)

    def guide(y):
        logits = numpyro.param("logits", jnp.zeros(3))
        numpyro.sample("z", nr.RelaxedOneHotCategorical(0.5, logits=logits))

    svi = SVI(model, guide, optax.adam(0.05), Trace_ELBO(num_particles=8))
    result = svi.run(random.PRNGKey(0), 600, data, progress_bar=False)
    probs = jax.nn.softmax(result.params["logits"])
    assert int(jnp.argmax(probs)) == 2 and float(probs[2]) > 0.9
    assert result.losses[-50:].mean() < result.losses[:50].mean()


@pytest.mark.parametrize("cls", [nr.RelaxedOneHotCategorical, nr.ExpRelaxedOneHotCategorical])
def test_autoguide_on_relaxed_latent(cls):
    """AutoNormal works through biject_to(support): simplex and the log-simplex."""
    from numpyro.infer.autoguide import AutoNormal

    def model():
        numpyro.sample("z", cls(0.7, logits=jnp.array([0.5, -1.0, 1.2])))

    guide = AutoNormal(model)
    svi = SVI(model, guide, optax.adam(0.02), Trace_ELBO())
    result = svi.run(random.PRNGKey(0), 300, progress_bar=False)
    z = guide.sample_posterior(random.PRNGKey(1), result.params, sample_shape=(200,))["z"]
    assert z.shape == (200, 3)
    assert bool(jnp.all(cls(0.7, logits=jnp.zeros(3)).support(z)))
    assert np.isfinite(result.losses).all()


# --- masked categories (-inf logits) -----------------------------------------------------------
MASK = jnp.array([[False, True, False, True], [True, False, False, False]])
FREE = jnp.array([[0.5, 0.0, 1.0, 0.0], [0.0, 0.3, -0.2, 2.0]])
MASKED = jnp.where(MASK, -jnp.inf, FREE)


def _masked(logits):
    return {
        "one_hot": nr.OneHotCategorical(logits=logits),
        "straight_through": nr.RelaxedOneHotCategoricalStraightThrough(0.5, logits=logits),
        "decoupled": nr.DecoupledStraightThroughGumbelSoftmax(1.0, 0.5, logits=logits),
    }


def _masked_reference_kl(p_logits, q_logits):
    """KL by scipy's ``rel_entr`` (0 where p is 0), in float64."""
    p = np.asarray(jax.nn.softmax(p_logits), np.float64)
    q = np.asarray(jax.nn.softmax(q_logits), np.float64)
    return np.sum(special.rel_entr(p, q), -1)


@pytest.mark.parametrize("name", ["one_hot", "straight_through", "decoupled"])
def test_masked_categories_are_finite_like_numpyro_categorical(name):
    """-inf logits mask categories (validation off): log_prob, samples, moments and the KLs are
    those of NumPyro's CategoricalLogits with the same logits, finite where it is, and the
    gradients w.r.t. the unmasked logits are finite."""
    with numpyro.validation_enabled(False):
        d = _masked(MASKED)[name]
        ref = dist.CategoricalLogits(MASKED)
        eye = jnp.eye(4)[:, None, :]  # every one-hot value, against both batch rows
        np.testing.assert_allclose(d.log_prob(eye), ref.log_prob(jnp.arange(4)[:, None]), rtol=1e-6)
        assert np.all(np.isfinite(np.asarray(d.log_prob(eye)))[~np.asarray(MASK).T])
        np.testing.assert_allclose(d.mean, ref.probs, rtol=1e-6)
        np.testing.assert_allclose(d.variance, ref.probs * (1 - ref.probs), rtol=1e-6)
        x = d.sample(random.PRNGKey(0), (2000,))
        assert np.all(np.asarray(x)[:, MASK] == 0) and np.all(np.asarray(x.sum(-1)) == 1)
        prior = nr.OneHotCategorical(logits=jnp.where(MASK, -jnp.inf, 0.0))
        np.testing.assert_allclose(
            kl_divergence(d, prior), _masked_reference_kl(MASKED, prior.logits), rtol=1e-5
        )
        uniform = nr.OneHotCategorical(logits=jnp.zeros((2, 4)))
        np.testing.assert_allclose(
            kl_divergence(d, uniform), _masked_reference_kl(MASKED, uniform.logits), rtol=1e-5
        )
        if name == "one_hot":
            entropy = np.sum(special.entr(np.asarray(ref.probs, np.float64)), -1)
            np.testing.assert_allclose(d.entropy(), entropy, rtol=1e-5)

        def loss(free):
            q = _masked(jnp.where(MASK, -jnp.inf, free))[name]
            z = q.sample(random.PRNGKey(1), (64,))
            w = jnp.arange(4.0)
            out = jnp.sum(z * w) + jnp.sum(q.log_prob(z)) + jnp.sum(kl_divergence(q, prior))
            if name == "one_hot":
                out = out + jnp.sum(q.entropy())
            return out + jnp.sum(q.mean * w) + jnp.sum(q.variance)

        grad = jax.grad(loss)(FREE)
        assert np.all(np.isfinite(np.asarray(grad)))
        assert np.all(np.asarray(grad)[MASK] == 0)


@needs_numpyro_0_22
def test_generalized_from_discrete_with_zero_probability_support_points():
    """Support points of probability 0 in every batch element are dropped (validation on or
    off); one that has probability 0 in some batch elements only is kept with a -inf logit,
    which validation refuses with a clear error and which works without it."""
    law = dist.Categorical(probs=jnp.array([0.5, 0.0, 0.3, 0.2]))
    g = nr.GeneralizedGumbelSoftmax.from_discrete(law, 0.5, hard=True)
    np.testing.assert_array_equal(g.values, [0.0, 2.0, 3.0])
    np.testing.assert_allclose(jnp.exp(g.log_prob(g.values)), [0.5, 0.3, 0.2], rtol=1e-6)
    assert g.log_prob(1.0) == -jnp.inf
    z = g.sample(random.PRNGKey(3), (1000,))
    assert set(np.unique(np.asarray(z))) <= {0.0, 2.0, 3.0}
    np.testing.assert_allclose(g.mean, 0.5 * 0 + 0.3 * 2 + 0.2 * 3, rtol=1e-6)

    probs = jnp.array([[0.4, 0.1, 0.5], [0.0, 0.3, 0.7]])
    batched = dist.Categorical(probs=probs)
    with pytest.raises(ValueError, match="probability 0.*validate_args=False"):
        nr.GeneralizedGumbelSoftmax.from_discrete(batched, 0.5, validate_args=True)
    with numpyro.validation_enabled(False):
        g = nr.GeneralizedGumbelSoftmax.from_discrete(batched, 0.5, hard=True)
        np.testing.assert_allclose(
            g.log_prob(jnp.arange(3.0)[:, None]), jnp.log(probs.T), rtol=1e-6
        )
        z = np.asarray(g.sample(random.PRNGKey(4), (1000,)))
        assert np.all(z[:, 1] != 0.0) and np.all(np.isfinite(z))
        np.testing.assert_allclose(g.mean, [1.1, 1.7], rtol=1e-6)
        np.testing.assert_allclose(g.variance, [0.89, 0.21], rtol=1e-5)
        uniform = nr.GeneralizedGumbelSoftmax(g.values, 0.5, logits=jnp.zeros(3))
        kl = np.sum(special.rel_entr(np.asarray(probs, np.float64), 1 / 3), -1)
        np.testing.assert_allclose(kl_divergence(g, uniform), kl, rtol=1e-5)
