"""Gates with atoms, correlated gates, the logit-normal, and the binary-family KLs.

Every statistical check uses a fixed key and a tolerance of 5 standard errors of its Monte
Carlo estimate (or a goodness-of-fit p-value above 1e-3); closed forms are compared with
independent computations (scipy, numerical integration).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax import random
from numpyro.distributions.kl import kl_divergence
from numpyro.infer import TraceMeanField_ELBO
from scipy import integrate, special, stats

import numpyro_relax.distributions.kl_bernoulli  # noqa: F401  (registers the KLs)
from numpyro_relax.distributions import (
    CorrelatedRelaxedBernoulli,
    GaussianRelaxedBernoulli,
    HardConcrete,
    LogitNormal,
    RelaxedBernoulliStraightThrough,
    StraightThroughBernoulli,
)

N = 40_000


@partial(jax.jit, static_argnums=2)
def _sample(d, key, n):
    """``d.sample(key, (n,))``, compiled once per class and shape (``d`` is a pytree argument)."""
    return d.sample(key, (n,))


def _se_prop(p, n=N):
    return np.sqrt(p * (1 - p) / n)


@jax.jit
def _density(d, x):
    return jnp.exp(d.log_prob(x))


def _quad(d, lo=0.0, hi=1.0, weight=None):
    """``int_lo^hi w(x) exp(log_prob(x)) dx`` by adaptive quadrature.

    The density is jit-compiled with the distribution as an argument, so one compilation
    serves every parameter value. The densities are float32: quad is asked for 1e-7, well
    below the 1e-5 the tests compare at.
    """
    w = weight or (lambda x: 1.0)
    val, _ = integrate.quad(
        lambda x: w(x) * float(_density(d, jnp.float32(x))),
        lo,
        hi,
        limit=200,
        epsabs=1e-7,
        epsrel=1e-7,
    )
    return val


def _assert_within(estimate, target, se, k=5.0):
    assert abs(estimate - target) < k * se + 1e-12, (estimate, target, se)


# -- GaussianRelaxedBernoulli ------------------------------------------------------------------
@pytest.mark.parametrize("loc, scale", [(0.3, 0.5), (0.9, 0.2), (-0.2, 0.4)])
def test_gaussian_gate_law(loc, scale):
    d = GaussianRelaxedBernoulli(loc, scale)
    ref = stats.norm(loc, scale)
    p0, p1 = ref.cdf(0.0), ref.sf(1.0)
    np.testing.assert_allclose(d.prob_zero, p0, rtol=1e-5)
    np.testing.assert_allclose(d.prob_one, p1, rtol=1e-5)
    np.testing.assert_allclose(d.prob_nonzero, 1 - p0, rtol=1e-5)
    np.testing.assert_allclose(jnp.exp(d.log_prob(0.0)), p0, rtol=1e-5)
    np.testing.assert_allclose(jnp.exp(d.log_prob(1.0)), p1, rtol=1e-5)
    xs = np.linspace(0.05, 0.95, 7)
    np.testing.assert_allclose(d.log_prob(jnp.asarray(xs)), ref.logpdf(xs), rtol=1e-5)
    # atoms + density integrate to one
    np.testing.assert_allclose(p0 + p1 + _quad(d), 1.0, atol=1e-5)

    z = np.asarray(_sample(d, random.PRNGKey(0), N), np.float64)
    _assert_within((z == 0).mean(), p0, _se_prop(p0))
    _assert_within((z == 1).mean(), p1, _se_prop(p1))
    inside = z[(z > 0) & (z < 1)]
    cond_cdf = lambda x: (ref.cdf(x) - p0) / (1 - p0 - p1)  # noqa: E731
    assert stats.kstest(inside, cond_cdf).pvalue > 1e-3
    for x in (0.2, 0.5, 0.8):
        _assert_within((z <= x).mean(), float(d.cdf(x)), _se_prop(float(d.cdf(x))))

    # moments: closed forms against quadrature and Monte Carlo
    mean_q = _quad(d, weight=lambda x: x) + p1
    np.testing.assert_allclose(d.mean, mean_q, rtol=1e-4, atol=1e-6)
    _assert_within(z.mean(), float(d.mean), z.std() / np.sqrt(N))
    var_q = _quad(d, weight=lambda x: (x - mean_q) ** 2) + p0 * mean_q**2 + p1 * (1 - mean_q) ** 2
    np.testing.assert_allclose(d.variance, var_q, rtol=1e-4, atol=1e-6)
    ent_q = -p0 * np.log(p0) - p1 * np.log(p1) - _quad(d, weight=lambda x: ref.logpdf(x))
    np.testing.assert_allclose(d.entropy(), ent_q, rtol=1e-4, atol=1e-6)

    # median: clip(loc, 0, 1), half the mass on each side
    med = float(d.median)
    np.testing.assert_allclose(med, min(max(loc, 0.0), 1.0), rtol=1e-6)
    if 0 < med < 1:
        _assert_within((z <= med).mean(), 0.5, _se_prop(0.5))
    else:
        assert (z <= med).mean() >= 0.5
    q = jnp.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(d.icdf(q), np.clip(ref.ppf(np.asarray(q)), 0, 1), atol=1e-5)


def test_gaussian_gate_pathwise_gradient_is_unbiased():
    """Per-sample d z / d(loc, scale) averages to the gradient of the closed-form mean."""
    loc, scale = 0.4, 0.5
    n = 20_000
    key = random.PRNGKey(1)

    def total(loc_v, scale_v):
        return jnp.sum(GaussianRelaxedBernoulli(loc_v, scale_v).sample(key))

    g_loc, g_scale = jax.jit(jax.grad(total, (0, 1)))(jnp.full(n, loc), jnp.full(n, scale))
    mean = jax.jit(jax.grad(lambda m, s: GaussianRelaxedBernoulli(m, s).mean, (0, 1)))
    exact = mean(loc, scale)
    for g, e in zip((g_loc, g_scale), exact, strict=True):
        g = np.asarray(g, np.float64)
        _assert_within(g.mean(), float(e), g.std() / np.sqrt(n))
    assert float(jnp.abs(exact[1])) > 0.01  # the scale really gets a gradient


# -- HardConcrete ------------------------------------------------------------------------------
def _hc_reference(log_alpha, beta, low, high):
    """Independent closed forms (scipy): atoms and the stretched binary Concrete density."""
    width = high - low

    def s_cdf(s):  # P(stretched-from s <= s), a logistic cdf in the logit of s
        return stats.logistic.cdf(beta * special.logit(s) - log_alpha)

    p0 = s_cdf(-low / width)
    p1 = 1 - s_cdf((1 - low) / width)

    def density(z):
        s = (z - low) / width
        a = np.exp(log_alpha)
        num = beta * a * s ** (-beta - 1) * (1 - s) ** (-beta - 1)
        return num / (a * s ** (-beta) + (1 - s) ** (-beta)) ** 2 / width

    def cdf(z):
        return s_cdf((z - low) / width)

    return p0, p1, density, cdf


@pytest.mark.parametrize(
    "log_alpha, beta, low, high",
    [(0.0, 2 / 3, -0.1, 1.1), (1.5, 0.5, -0.2, 1.05), (-1.0, 1.0, -0.1, 1.1)],
)
def test_hard_concrete_law(log_alpha, beta, low, high):
    d = HardConcrete(log_alpha, beta, low, high)
    p0, p1, density, cdf = _hc_reference(log_alpha, beta, low, high)
    np.testing.assert_allclose(d.prob_zero, p0, rtol=1e-5)
    np.testing.assert_allclose(d.prob_one, p1, rtol=1e-5)
    np.testing.assert_allclose(
        d.prob_nonzero, special.expit(log_alpha - beta * np.log(-low / high)), rtol=1e-5
    )
    np.testing.assert_allclose(d.prob_nonzero, 1 - p0, rtol=1e-5)
    np.testing.assert_allclose(jnp.exp(d.log_prob(0.0)), p0, rtol=1e-5)
    np.testing.assert_allclose(jnp.exp(d.log_prob(1.0)), p1, rtol=1e-5)
    xs = np.linspace(0.02, 0.98, 9)
    np.testing.assert_allclose(jnp.exp(d.log_prob(jnp.asarray(xs))), density(xs), rtol=1e-4)
    np.testing.assert_allclose(d.cdf(jnp.asarray(xs)), cdf(xs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p0 + p1 + _quad(d), 1.0, atol=1e-5)

    z = np.asarray(_sample(d, random.PRNGKey(2), N), np.float64)
    _assert_within((z == 0).mean(), p0, _se_prop(p0))
    _assert_within((z == 1).mean(), p1, _se_prop(p1))
    inside = z[(z > 0) & (z < 1)]
    assert stats.kstest(inside, lambda x: (cdf(x) - p0) / (1 - p0 - p1)).pvalue > 1e-3

    # the true median: half the mass on each side
    med = float(d.median)
    s_med = special.expit(log_alpha / beta) * (high - low) + low
    np.testing.assert_allclose(med, np.clip(s_med, 0, 1), rtol=1e-5, atol=1e-7)
    if 0 < med < 1:
        _assert_within((z <= med).mean(), 0.5, _se_prop(0.5))
    # test_gate is the paper's closed form, the median of the gate at temperature 1
    tg = float(d.test_gate)
    np.testing.assert_allclose(
        tg, np.clip(special.expit(log_alpha) * (high - low) + low, 0, 1), rtol=1e-5, atol=1e-7
    )
    z1 = np.asarray(_sample(HardConcrete(log_alpha, 1.0, low, high), random.PRNGKey(3), N))
    if 0 < tg < 1:
        _assert_within((z1 <= tg).mean(), 0.5, _se_prop(0.5))


def test_hard_concrete_median_on_an_atom_and_l0_gradient():
    d = HardConcrete(-3.0)
    assert float(d.median) == 0.0 and float(d.prob_zero) > 0.5
    z = np.asarray(_sample(d, random.PRNGKey(4), N))
    assert (z == 0).mean() > 0.5
    # the L0 penalty is differentiable in log_alpha, as in the paper
    g = jax.grad(lambda a: HardConcrete(a).prob_nonzero)(0.0)
    p = float(HardConcrete(0.0).prob_nonzero)
    np.testing.assert_allclose(g, p * (1 - p), rtol=1e-5)


# -- CorrelatedRelaxedBernoulli ----------------------------------------------------------------
R2 = jnp.array([[1.0, 0.7], [0.7, 1.0]])
PI2 = jnp.array([0.3, 0.6])


@jax.jit
def _independent_case(d, key):
    x = jnp.clip(d.sample(key, (100,)), 1e-4, 1 - 1e-4)
    ref = dist.RelaxedBernoulliLogits(d.temperature[..., None], d.logits).to_event(1)
    return d.log_prob(x), ref.log_prob(x)


def test_correlated_independent_case_is_product_of_binary_concretes():
    d = CorrelatedRelaxedBernoulli(jnp.array([0.3, 0.6, 0.8]), jnp.eye(3), 0.8)
    lp, ref = _independent_case(d, random.PRNGKey(5))
    np.testing.assert_allclose(lp, ref, rtol=1e-4, atol=1e-3)


@jax.jit
def _copula_case(d, key):
    x, (v,) = d.sample_with_intermediates(key, (50,))
    marg = jnp.sum(dist.RelaxedBernoulliLogits(d.temperature[..., None], d.logits).log_prob(x), -1)
    return x, v, marg, d.log_prob(x, [v]), d.log_prob(x), d.normals(x)


def test_correlated_log_prob_against_scipy_copula():
    d = CorrelatedRelaxedBernoulli(PI2, R2, 0.6)
    x, v, marg, lp, lp_value, v_value = map(np.asarray, _copula_case(d, random.PRNGKey(6)))
    v64 = v.astype(np.float64)
    copula = stats.multivariate_normal(np.zeros(2), np.asarray(R2)).logpdf(v64) - np.sum(
        stats.norm.logpdf(v64), -1
    )
    ok = np.all((x > 1e-3) & (x < 1 - 1e-3), -1)  # where float32 sigmoid keeps its digits
    assert ok.mean() > 0.5
    np.testing.assert_allclose(lp[ok], (copula + marg)[ok], rtol=1e-4, atol=1e-3)
    # without the intermediates the sampler is inverted from the value
    np.testing.assert_allclose(v_value[ok], v[ok], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(lp_value[ok], lp[ok], rtol=1e-4, atol=1e-3)


@jax.jit
def _grid_mass(d, yy, h):
    log_jac = jnp.sum(jax.nn.log_sigmoid(yy) + jax.nn.log_sigmoid(-yy), -1)
    return jnp.sum(jnp.exp(d.log_prob(jax.nn.sigmoid(yy)) + log_jac)) * h * h


@pytest.mark.parametrize("rho", [0.7, -0.5])
def test_correlated_density_integrates_to_one(rho):
    """Integrate over logit space on a grid (the density in x is singular at the edges)."""
    with jax.enable_x64(True):
        d = CorrelatedRelaxedBernoulli(
            jnp.asarray(PI2, jnp.float64), jnp.array([[1.0, rho], [rho, 1.0]]), 0.9
        )
        h = 0.1  # the rectangle rule is spectrally accurate for this smooth, decaying integrand
        y = jnp.arange(-25.0, 25.0 + h / 2, h)
        yy = jnp.stack(jnp.meshgrid(y, y, indexing="ij"), -1)
        total = float(_grid_mass(d, yy, h))
    assert abs(total - 1.0) < 1e-4, total


@pytest.mark.parametrize("rho", [0.7, -0.5, 0.0])
def test_correlated_gates_follow_the_copula(rho):
    t = 1.0
    R = jnp.array([[1.0, rho], [rho, 1.0]])
    d = CorrelatedRelaxedBernoulli(PI2, R, t)
    x, (v,) = d.sample_with_intermediates(random.PRNGKey(7), (N,))
    x, v = np.asarray(x, np.float64), np.asarray(v, np.float64)
    # the underlying normals have correlation R (SE of r: (1 - rho^2) / sqrt(N))
    r = np.corrcoef(v.T)[0, 1]
    _assert_within(r, rho, (1 - rho**2) / np.sqrt(N))
    # the gates are monotone in the normals: Spearman's rho is (6/pi) arcsin(rho/2)
    rs = stats.spearmanr(x[:, 0], x[:, 1]).statistic
    target = 6 / np.pi * np.arcsin(rho / 2)
    _assert_within(np.arctanh(rs), np.arctanh(target), np.sqrt(1.06 / (N - 3)))
    # rounding the gates gives the Gaussian-copula multivariate Bernoulli
    both = (x[:, 0] > 0.5) & (x[:, 1] > 0.5)
    a = stats.norm.ppf(np.asarray(PI2, np.float64))
    p11 = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]]).cdf(a)
    _assert_within(both.mean(), p11, _se_prop(p11))
    # each gate is marginally a binary Concrete: P(x <= c) = sigmoid(t logit c - logit pi)
    for k in range(2):
        lg = float(d.logits[k])
        assert (
            stats.kstest(x[:, k], lambda c, lg=lg: special.expit(t * special.logit(c) - lg)).pvalue
            > 1e-3
        )


def test_correlated_argument_errors():
    with pytest.raises(ValueError, match="correlation"):
        CorrelatedRelaxedBernoulli(PI2, jnp.array([[1.0, 0.5], [0.4, 1.0]]), 0.5)  # asymmetric
    with pytest.raises(ValueError, match="correlation"):
        CorrelatedRelaxedBernoulli(PI2, jnp.array([[2.0, 0.5], [0.5, 1.0]]), 0.5)  # diagonal
    with pytest.raises(ValueError, match="correlation"):
        CorrelatedRelaxedBernoulli(PI2, jnp.array([[1.0, 1.5], [1.5, 1.0]]), 0.5)  # not PD
    with pytest.raises(ValueError, match="correlation"):
        CorrelatedRelaxedBernoulli(PI2, jnp.eye(3), 0.5)  # shape
    with pytest.raises(ValueError, match="probs"):
        CorrelatedRelaxedBernoulli(0.5, jnp.eye(1), 0.5)
    with pytest.raises(ValueError, match="temperature"):
        CorrelatedRelaxedBernoulli(PI2, R2, 0.0)
    with pytest.raises(ValueError, match="probs"):
        CorrelatedRelaxedBernoulli(jnp.array([0.3, 1.2]), R2, 0.5, validate_args=True)
    # under jit the checks that need values are skipped, shapes are still checked
    jax.jit(lambda r: CorrelatedRelaxedBernoulli(PI2, r, 0.5).sample(random.PRNGKey(0)))(R2)


def test_correlated_without_gates_is_a_clear_error():
    # D = 0 used to construct, then raise ZeroDivisionError in log_prob
    with pytest.raises(ValueError, match="probs.*at least one gate"):
        CorrelatedRelaxedBernoulli(jnp.zeros(0), jnp.zeros((0, 0)), 0.5)


POSITIVE_PARAMS = {
    "correlated": (lambda v, **kw: CorrelatedRelaxedBernoulli(PI2, R2, v, **kw), "temperature"),
    "hard_concrete": (lambda v, **kw: HardConcrete(0.3, v, **kw), "temperature"),
    "gaussian_gate": (lambda v, **kw: GaussianRelaxedBernoulli(0.3, v, **kw), "scale"),
    "logit_normal": (lambda v, **kw: LogitNormal(0.3, v, **kw), "scale"),
}


@pytest.mark.parametrize("case", list(POSITIVE_PARAMS.values()), ids=list(POSITIVE_PARAMS))
def test_infinite_or_subnormal_positive_parameters_are_rejected_under_validation(case):
    make, name = case
    with pytest.raises(ValueError, match=f"{name}.* must be finite"):
        make(jnp.inf, validate_args=True)
    with pytest.raises(ValueError, match=f"{name}.* smallest normal float32 .*subnormal"):
        make(1e-40, validate_args=True)
    with numpyro.validation_enabled(False):  # as in NumPyro: anything positive constructs
        make(jnp.inf)
        make(1e-40)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize(
    "make",
    [
        lambda p: GaussianRelaxedBernoulli(p[0], p[1]),
        lambda p: HardConcrete(p[0], p[1]),
        lambda p: CorrelatedRelaxedBernoulli(p, R2, p[1]),
        lambda p: LogitNormal(p[0], p[1]),
    ],
    ids=["gaussian_gate", "hard_concrete", "correlated", "logit_normal"],
)
def test_half_precision_parameters_are_computed_in_float32(make, dtype):
    """Promoted to float32 (docs/decisions.md); GaussianRelaxedBernoulli raised TypeError (JAX's
    ndtr has no float16) and the others computed in half precision."""
    params = jnp.array([0.3, 0.25], dtype)
    half, ref = make(params), make(params.astype(jnp.float32))
    key = random.PRNGKey(10)
    x = half.sample(key, (100,))
    assert x.dtype == jnp.float32
    np.testing.assert_array_equal(x, ref.sample(key, (100,)))
    np.testing.assert_array_equal(half.log_prob(x), ref.log_prob(x))


def test_correlated_gates_stay_inside_the_unit_interval_at_low_temperature():
    """Clamped into (tiny, 1 - eps) like NumPyro's RelaxedBernoulli: a binary Concrete prior
    scored at the gates from the value alone (how ``replay`` scores a model site) stays finite."""
    probs = jnp.array([[1e-6, 1 - 1e-6], [0.5, 0.999]])
    d = CorrelatedRelaxedBernoulli(probs, R2, 0.01)
    x = d.sample(random.PRNGKey(11), (500,))
    assert bool(jnp.all((x > 0) & (x < 1)))

    def prior_log_prob(logits):
        return jnp.sum(dist.RelaxedBernoulliLogits(0.01, logits).log_prob(x))

    value, grad = jax.value_and_grad(prior_log_prob)(jnp.zeros(2))
    assert np.isfinite(float(value)) and bool(jnp.all(jnp.isfinite(grad)))
    assert bool(jnp.all(jnp.isfinite(d.log_prob(x))))


def test_correlated_float32_stability():
    probs = jnp.array([[1e-6, 1 - 1e-6], [0.5, 0.999]])
    t = jnp.array([0.01, 0.01])

    def run(p, t):
        d = CorrelatedRelaxedBernoulli(p, R2, t)
        x, inter = d.sample_with_intermediates(random.PRNGKey(8), (100,))
        return x, d.log_prob(x, inter)

    @jax.jit
    def everything(p, t):
        grads = [jax.grad(lambda *a, o=o: jnp.sum(run(*a)[o]), (0, 1))(p, t) for o in (0, 1)]
        return run(p, t), grads

    out = everything(probs, t)
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(out))


# -- LogitNormal -------------------------------------------------------------------------------
@pytest.mark.parametrize("loc, scale", [(0.0, 1.0), (1.5, 0.4), (-2.0, 2.0)])
def test_logit_normal_against_scipy(loc, scale):
    d = LogitNormal(loc, scale)
    xs = np.linspace(0.01, 0.99, 25)
    ref = stats.norm.logpdf(special.logit(xs), loc, scale) - np.log(xs * (1 - xs))
    np.testing.assert_allclose(d.log_prob(jnp.asarray(xs)), ref, rtol=1e-5, atol=1e-5)
    cdf = lambda x: stats.norm.cdf(special.logit(x), loc, scale)  # noqa: E731
    np.testing.assert_allclose(d.cdf(jnp.asarray(xs)), cdf(xs), rtol=1e-5, atol=1e-6)
    q = np.array([0.05, 0.5, 0.95])
    np.testing.assert_allclose(
        d.icdf(jnp.asarray(q)), special.expit(stats.norm.ppf(q, loc, scale)), rtol=1e-5
    )
    np.testing.assert_allclose(d.median, special.expit(loc), rtol=1e-6)
    x = np.asarray(_sample(d, random.PRNGKey(9), N), np.float64)
    assert stats.kstest(x, cdf).pvalue > 1e-3
    np.testing.assert_allclose(_quad(d, 0.0, 1.0), 1.0, atol=1e-4)


# -- KL divergences ----------------------------------------------------------------------------
P_ST = jnp.array([0.2, 0.7, 0.95])
Q_B = jnp.array([0.5, 0.1, 0.9])


@pytest.mark.parametrize(
    "make_p",
    [
        lambda: StraightThroughBernoulli(probs=P_ST),
        lambda: RelaxedBernoulliStraightThrough(0.5, probs=P_ST),
    ],
    ids=["st", "relaxed_st"],
)
@pytest.mark.parametrize(
    "make_q",
    [
        lambda: dist.Bernoulli(probs=Q_B),
        lambda: dist.Bernoulli(logits=jax.scipy.special.logit(Q_B)),
        lambda: StraightThroughBernoulli(probs=Q_B),
        lambda: RelaxedBernoulliStraightThrough(2.0, probs=Q_B),
    ],
    ids=["bernoulli_probs", "bernoulli_logits", "st", "relaxed_st"],
)
def test_bernoulli_kl(make_p, make_q):
    p, q = make_p(), make_q()
    kl = kl_divergence(p, q)
    pp, qq = np.asarray(P_ST, np.float64), np.asarray(Q_B, np.float64)
    exact = pp * np.log(pp / qq) + (1 - pp) * np.log((1 - pp) / (1 - qq))
    np.testing.assert_allclose(kl, exact, rtol=1e-4, atol=1e-6)
    x = _sample(p, random.PRNGKey(10), N)
    diff = np.asarray(p.log_prob(x) - q.log_prob(x), np.float64)
    for k in range(3):
        _assert_within(diff[:, k].mean(), exact[k], diff[:, k].std() / np.sqrt(N))
    # through to_event (and so TraceMeanField_ELBO on plates)
    np.testing.assert_allclose(
        kl_divergence(p.to_event(1), q.to_event(1)), exact.sum(), rtol=1e-4, atol=1e-6
    )


def test_trace_mean_field_elbo_uses_the_exact_kl():
    def model():
        numpyro.sample("z", dist.Bernoulli(probs=Q_B).to_event(1))

    def guide():
        numpyro.sample("z", StraightThroughBernoulli(probs=P_ST).to_event(1))

    loss = TraceMeanField_ELBO().loss(random.PRNGKey(0), {}, model, guide)
    np.testing.assert_allclose(
        loss,
        kl_divergence(StraightThroughBernoulli(probs=P_ST), dist.Bernoulli(probs=Q_B)).sum(),
        rtol=1e-5,
    )


@jax.jit
def _kl_integrand(p, q, x):
    lp, lq = p.log_prob(x), q.log_prob(x)
    return jnp.exp(lp) * (lp - lq)


@pytest.mark.parametrize(
    "p_params, q_params",
    [((0.3, 0.5), (0.6, 0.3)), ((0.9, 0.2), (-0.1, 0.7)), ((0.5, 0.4), (0.5, 0.4))],
)
def test_gaussian_gate_kl(p_params, q_params):
    p, q = GaussianRelaxedBernoulli(*p_params), GaussianRelaxedBernoulli(*q_params)
    kl = float(kl_divergence(p, q))
    # independent: atoms plus quadrature of p log(p/q) inside, from the log densities
    inside, _ = integrate.quad(
        lambda x: float(_kl_integrand(p, q, jnp.float32(x))),
        0.0,
        1.0,
        limit=200,
        epsabs=1e-7,
        epsrel=1e-7,
    )
    atoms = sum(float(_kl_integrand(p, q, jnp.float32(a))) for a in (0.0, 1.0))
    np.testing.assert_allclose(kl, atoms + inside, rtol=1e-4, atol=1e-6)
    z = _sample(p, random.PRNGKey(11), N)
    diff = np.asarray(p.log_prob(z) - q.log_prob(z), np.float64)
    _assert_within(diff.mean(), kl, diff.std() / np.sqrt(N))
    if p_params == q_params:
        assert abs(kl) < 1e-6


def test_logit_normal_kl():
    p, q = LogitNormal(jnp.array([0.3, -1.0]), 0.8), LogitNormal(jnp.array([-0.5, 1.0]), 1.5)
    kl = np.asarray(kl_divergence(p, q))
    m1, s1, m2, s2 = np.array([0.3, -1.0]), 0.8, np.array([-0.5, 1.0]), 1.5
    exact = np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    np.testing.assert_allclose(kl, exact, rtol=1e-5)
    x, inter = p.sample_with_intermediates(random.PRNGKey(12), (N,))
    diff = np.asarray(p.log_prob(x, inter) - q.log_prob(x), np.float64)
    for k in range(2):
        _assert_within(diff[:, k].mean(), exact[k], diff[:, k].std() / np.sqrt(N))


def test_correlated_gates_shared_correlation_matches_broadcast():
    """One D x D correlation shared by a batch (one Cholesky, one multi-RHS solve) gives the
    same samples and densities as the same matrix repeated for every batch element."""
    corr = jnp.array([[1.0, 0.6, -0.2], [0.6, 1.0, 0.3], [-0.2, 0.3, 1.0]])
    probs = jnp.array([[0.3, 0.6, 0.8], [0.5, 0.2, 0.4]])
    shared = CorrelatedRelaxedBernoulli(probs, corr, 0.5)
    repeated = CorrelatedRelaxedBernoulli(probs, jnp.broadcast_to(corr, (2, 3, 3)), 0.5)
    assert shared.batch_shape == repeated.batch_shape == (2,)
    key = random.PRNGKey(3)
    x, (v,) = shared.sample_with_intermediates(key, (5,))
    x2, (v2,) = repeated.sample_with_intermediates(key, (5,))
    np.testing.assert_allclose(x, x2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shared.log_prob(x, [v]), repeated.log_prob(x2, [v2]), rtol=1e-4)
    np.testing.assert_allclose(shared.log_prob(x), repeated.log_prob(x), rtol=1e-4)


def _compiled_bytes(f, *args):
    """Temporaries plus outputs of ``jit(f)`` by XLA's memory analysis (compiled, not run)."""
    m = jax.jit(f).lower(*args).compile().memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes


def _ar1(rho, dim):
    i = np.arange(dim)
    return rho ** np.abs(i[:, None] - i[None, :])


@pytest.mark.parametrize("use_intermediates", [False, True])
def test_correlated_log_prob_does_not_copy_the_factor_per_sample(use_intermediates):
    """A batch of B correlation matrices and a sample of S draws: the memory of ``log_prob``
    grows like S x B x D, not S x B x D^2 (one factor per draw). The constant is set by
    ``log_ndtr``'s branches (about 20 vectors: XLA evaluates every branch of it); one factor
    per draw would be D = 256 vectors."""
    dim, batch = 256, 2
    corr = jnp.asarray(np.stack([_ar1(0.5, dim), _ar1(-0.3, dim)]), jnp.float32)
    probs = jnp.linspace(0.1, 0.9, batch * dim).reshape(batch, dim)

    def log_prob(probs, corr, x, v):
        d = CorrelatedRelaxedBernoulli(probs, corr, 0.5)
        return d.log_prob(x, [v] if use_intermediates else None)

    def peak(s):
        x = jnp.full((s, batch, dim), 0.4)
        return _compiled_bytes(log_prob, probs, corr, x, jnp.zeros_like(x))

    vector = 64 * batch * dim * 4  # one float32 (64, B, D) array
    factors = batch * dim * dim * 4  # the B factors, once
    small, large = peak(64), peak(128)
    # before: every draw carried its own D x D factor, (large - small) = 64 * factors
    assert large - small <= 32 * vector
    assert small <= 32 * vector + 8 * factors

    # the values: each batch element on its own (a shared factor) gives the same densities
    @jax.jit
    def batched_and_single(probs, corr, key):
        x, (v,) = CorrelatedRelaxedBernoulli(probs, corr, 0.5).sample_with_intermediates(key, (5,))
        singles = [log_prob(probs[b], corr[b], x[:, b], v[:, b]) for b in range(batch)]
        return log_prob(probs, corr, x, v), jnp.stack(singles, axis=-1)

    lp, ref = batched_and_single(probs, corr, random.PRNGKey(7))
    np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-3)
