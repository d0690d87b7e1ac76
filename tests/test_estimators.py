"""Gradient estimators: unbiasedness against enumeration, the toy variances, errors, jit/vmap.

Statistical checks compare a Monte Carlo mean over ``M`` independent estimates (fixed keys) to
an exact value computed by enumeration in float64 NumPy, with a tolerance of ``Z`` standard
errors estimated from the same draws. Everything random runs under one ``jax.jit`` per case
(compilation dominates the cost of these tests; the draws themselves take milliseconds).
"""

import itertools
from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, special, stats

from numpyro_relax import estimators as est
from numpyro_relax.estimators import (
    arm,
    arsm,
    disarm,
    gumbel_softmax,
    rebar,
    reinforce,
    relax,
    relax_variance_grad,
    straight_through,
)

Z = 5.0  # tolerance in standard errors
M = 8192  # independent estimates per statistical check


# ------------------------------------------------------------------------------------------------
# test problems with exact answers by enumeration (float64 NumPy)
# ------------------------------------------------------------------------------------------------


def f_bern(b):
    """Three bits with pairwise interactions; a polynomial, so relaxed inputs work too."""
    return b[0] * b[1] - 2.0 * b[1] * b[2] + b[0] * b[2] + 0.5 * b[0] + (b[2] - 0.3) ** 2


V0 = np.array([0.3, -1.0, 2.0, 0.5, -0.2])
V1 = np.array([1.0, -0.5, 2.0, 0.0, 0.7])


def f_cat(x):
    """Two interacting categorical variables with 5 classes each (one-hot rows of x)."""
    a, c = x[0] @ V0, x[1] @ V1
    return (a - 0.5) ** 2 + a * c + 0.3 * x[1, 2]


def exact_bern(theta):
    theta = np.asarray(theta, dtype=np.float64)
    p = special.expit(theta)
    value, grad = 0.0, np.zeros_like(theta)
    for bits in itertools.product([0.0, 1.0], repeat=theta.size):
        b = np.array(bits)
        prob = np.prod(np.where(b > 0, p, 1 - p))
        value += prob * f_bern(b)
        grad += prob * f_bern(b) * (b - p)  # d p(b) / d theta = p(b) (b - sigma(theta))
    return value, grad


def exact_cat(theta):
    theta = np.asarray(theta, dtype=np.float64)
    p = special.softmax(theta, axis=-1)
    num_vars, k = theta.shape
    value, grad = 0.0, np.zeros_like(theta)
    for idx in itertools.product(range(k), repeat=num_vars):
        x = np.eye(k)[list(idx)]
        prob = np.prod(p[np.arange(num_vars), idx])
        value += prob * f_cat(x)
        grad += prob * f_cat(x) * (x - p)
    return value, grad


BERN_LOGITS = np.array([0.3, -1.2, 2.0], dtype=np.float32)
CAT_LOGITS = np.array([[0.5, -1.0, 0.2, 1.5, -0.3], [0.2, 0.9, -0.7, 0.4, 0.0]], dtype=np.float32)

# (family, f, logits, extreme logits of the same shape, exact)
PROBLEMS = {
    "bernoulli": ("bernoulli", f_bern, BERN_LOGITS, np.array([30.0, -30.0, 0.0]), exact_bern),
    "categorical": (
        "categorical",
        f_cat,
        CAT_LOGITS,
        np.array([[30.0, -30.0, 0.0, 5.0, -5.0], [-30.0, 0.0, 30.0, 30.0, -5.0]]),
        exact_cat,
    ),
}


def mlp_surrogate(params, z):
    h = jnp.tanh(z.reshape(-1) @ params["w1"] + params["b1"])
    return h @ params["w2"]


def mlp_params(size, hidden=8):
    k1, k2 = jax.random.split(jax.random.PRNGKey(42))
    return {
        "w1": jax.random.normal(k1, (size, hidden)) / np.sqrt(size),
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden,)),
    }


CASES = {
    "reinforce": (reinforce, {}),
    "reinforce_n4": (reinforce, {"num_samples": 4}),
    "reinforce_loo": (reinforce, {"baseline": "loo", "num_samples": 4}),
    "arm": (arm, {}),
    "disarm": (disarm, {}),
    "arsm": (arsm, {}),
    "rebar": (rebar, {}),
    "rebar_t2_eta03": (rebar, {"temperature": 2.0, "eta": 0.3}),
    "relax_mlp": (relax, {}),
    "gumbel_softmax": (gumbel_softmax, {}),
    "straight_through": (straight_through, {}),
}
UNBIASED = [
    "reinforce",
    "reinforce_loo",
    "arm",
    "disarm",
    "arsm",
    "rebar",
    "rebar_t2_eta03",
    "relax_mlp",
]
BIASED = ["gumbel_softmax", "straight_through"]
BERNOULLI_ONLY = {"arm", "disarm"}


def case_fn(name, problem):
    """The estimator of ``name`` for ``problem`` as a function of ``(logits, key)``."""
    estimator, kw = CASES[name]
    family, f = PROBLEMS[problem][:2]
    kw = dict(kw, family=family)
    if estimator is relax:
        kw.update(surrogate=mlp_surrogate, surrogate_params=mlp_params(PROBLEMS[problem][2].size))
    return partial(estimator, f, **kw)


@cache
def run_case(name, problem):
    """``M`` estimates at the problem's logits and at extreme logits, one jit, vmapped over both;
    plus a single un-vmapped call on the first key, compiled in the same jit."""
    fn = case_fn(name, problem)
    logits = jnp.stack([jnp.asarray(PROBLEMS[problem][2]), jnp.asarray(PROBLEMS[problem][3])])
    keys = jax.random.split(jax.random.PRNGKey(0), M)

    @jax.jit
    def run(logits, keys):
        return jax.vmap(jax.vmap(fn, (None, 0)), (0, None))(logits, keys), fn(logits[1], keys[0])

    (values, grads), (value_1, grad_1) = run(logits, keys)
    assert grads.dtype == jnp.float32 and grads.shape == (2, M) + logits.shape[1:]
    # vmap over logits and keys gives what a single call gives
    np.testing.assert_allclose(value_1, values[1, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_1, grads[1, 0], rtol=1e-4, atol=1e-5)
    return np.asarray(values, dtype=np.float64), np.asarray(grads, dtype=np.float64)


def assert_mean_close(samples, expected, z=Z):
    samples = np.asarray(samples, dtype=np.float64)
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    err = np.abs(mean - np.asarray(expected))
    assert np.all(err <= z * se), f"mean {mean} vs exact {expected}: {err / se} standard errors"


def paired_improvement(g_worse, g_better, exact_grad):
    """Mean and standard error of ||g_worse - exact||^2 - ||g_better - exact||^2 (same keys)."""
    axes = tuple(range(1, g_worse.ndim))
    d = np.sum((g_worse - exact_grad) ** 2, axes) - np.sum((g_better - exact_grad) ** 2, axes)
    return d.mean(), d.std(ddof=1) / np.sqrt(d.size)


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name", UNBIASED)
def test_unbiased_against_enumeration(problem, name):
    if name in BERNOULLI_ONLY and problem != "bernoulli":
        pytest.skip("Bernoulli-only estimator")
    values, grads = run_case(name, problem)
    exact_value, exact_grad = PROBLEMS[problem][4](PROBLEMS[problem][2])
    assert_mean_close(grads[0], exact_grad)
    assert_mean_close(values[0], exact_value)
    # |logits| up to 30 in float32: finite
    assert np.all(np.isfinite(grads[1])) and np.all(np.isfinite(values[1]))


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("name", BIASED)
def test_pathwise_finite_and_value_unbiased(problem, name):
    values, grads = run_case(name, problem)
    assert np.all(np.isfinite(grads)) and np.all(np.isfinite(values))
    assert_mean_close(values[0], PROBLEMS[problem][4](PROBLEMS[problem][2])[0])


def test_disarm_improves_on_arm():
    """DisARM is ARM Rao-Blackwellised over u: on the same pairs its error is smaller."""
    exact_grad = exact_bern(BERN_LOGITS)[1]
    mean, se = paired_improvement(
        run_case("arm", "bernoulli")[1][0], run_case("disarm", "bernoulli")[1][0], exact_grad
    )
    assert mean > Z * se


def test_loo_baseline_reduces_variance():
    exact_grad = exact_cat(CAT_LOGITS)[1]
    g_plain = run_case("reinforce_n4", "categorical")[1][0]
    g_loo = run_case("reinforce_loo", "categorical")[1][0]
    mean, se = paired_improvement(g_plain, g_loo, exact_grad)
    assert mean > Z * se


# ------------------------------------------------------------------------------------------------
# the toy problem f(b) = (b - 0.499)^2 at logit 0
# ------------------------------------------------------------------------------------------------
#
# With d = f(1) - f(0) = 0.501^2 - 0.499^2 = 0.002, the exact gradient w.r.t. the logit is
# sigma'(0) d = 0.0005. One-sample estimators:
#   REINFORCE  g = f(b)(b - 1/2) takes the values f(1)/2 and -f(0)/2, both at distance
#              (f(1) + f(0))/4 = 0.1250005 from the mean: Var = 0.1250005^2 = 0.015625125.
#   ARM        g = (f(b~) - f(b))(u - 1/2) = d |u - 1/2| with |u - 1/2| ~ U(0, 1/2):
#              Var = d^2 / 48 = 8.333e-8.
#   DisARM     at logit 0 the pair always differs and g = d / 4 for both orders: Var = 0.

TOY_D = 0.501**2 - 0.499**2
TOY_GRAD = 0.25 * TOY_D
M_TOY = 65536


def f_toy(b):
    return jnp.sum((b - 0.499) ** 2)


def toy_estimates(estimator, logit=0.0, **kw):
    keys = jax.random.split(jax.random.PRNGKey(7), M_TOY)
    fn = jax.jit(jax.vmap(lambda k: estimator(f_toy, jnp.full((1,), logit), k, **kw)[1][0]))
    return np.asarray(fn(keys), dtype=np.float64)


def variance_about(g, mean):
    """Variance about the known mean (unbiased) and its standard error."""
    sq = (g - mean) ** 2
    return sq.mean(), sq.std(ddof=1) / np.sqrt(sq.size)


def test_toy_reinforce_variance():
    theory = ((0.501**2 + 0.499**2) / 4) ** 2
    np.testing.assert_allclose(theory, 0.015625125, rtol=1e-9)
    g = toy_estimates(reinforce)
    assert_mean_close(g, TOY_GRAD)
    var, se = variance_about(g, TOY_GRAD)
    # (g - mean)^2 is the same for both outcomes, so se ~ 0: allow float32 rounding of f.
    assert abs(var - theory) <= Z * se + 1e-5 * theory


def test_toy_arm_variance():
    theory = TOY_D**2 / 48
    quad, _ = integrate.quad(lambda u: (TOY_D * abs(u - 0.5) - TOY_GRAD) ** 2, 0, 1, points=[0.5])
    np.testing.assert_allclose(quad, theory, rtol=1e-10)
    np.testing.assert_allclose(theory, 8.333e-8, rtol=1e-4)
    g = toy_estimates(arm)
    assert_mean_close(g, TOY_GRAD)
    var, se = variance_about(g, TOY_GRAD)
    assert abs(var - theory) <= Z * se


def test_toy_disarm_zero_variance():
    g = toy_estimates(disarm)
    # Exactly d/4 up to float32 rounding of f(1) - f(0) (~1e-5 relative: f ~ 0.25, d = 0.002).
    np.testing.assert_allclose(g, TOY_GRAD, rtol=1e-4)
    assert np.var(g) <= (1e-4 * TOY_GRAD) ** 2


def test_toy_arsm_two_classes():
    """ARSM on the two-class form of the toy problem: unbiased, variance far below REINFORCE."""
    g = toy_estimates(arsm, family="bernoulli")
    assert_mean_close(g, TOY_GRAD)
    var, se = variance_about(g, TOY_GRAD)
    assert var + Z * se < 1e-3 * 0.015625125


TOY_BIASED_LOGIT = 1.0
TAU = 0.5


def relaxed_toy_gradient(hard_forward):
    """E_u[d/dtheta f(relaxed sample)] at theta = 1, by quadrature over the uniform u."""

    def integrand(u):
        z = TOY_BIASED_LOGIT + special.logit(u)
        s = special.expit(z / TAU)
        x = float(z > 0) if hard_forward else s
        return 2 * (x - 0.499) * s * (1 - s) / TAU

    value, _ = integrate.quad(integrand, 0, 1, points=[special.expit(-TOY_BIASED_LOGIT)], limit=200)
    return value


@pytest.mark.parametrize("estimator", [gumbel_softmax, straight_through], ids=lambda e: e.__name__)
def test_pathwise_bias_is_the_documented_one(estimator):
    """Biased: the mean is the gradient of the relaxed objective, not of E[f(b)]."""
    g = toy_estimates(estimator, logit=TOY_BIASED_LOGIT, temperature=TAU)
    assert_mean_close(g, relaxed_toy_gradient(hard_forward=estimator is straight_through))
    p = special.expit(TOY_BIASED_LOGIT)
    true_grad = p * (1 - p) * TOY_D
    assert abs(g.mean() - true_grad) > 10 * g.std(ddof=1) / np.sqrt(g.size)


# ------------------------------------------------------------------------------------------------
# the conditional relaxation z~ | b used by REBAR / RELAX
# ------------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnums=(1, 2))
def conditional_draws(theta, family, n):
    ku, kv = jax.random.split(jax.random.PRNGKey(3))
    u = est._uniform(ku, (n,) + theta.shape, theta.dtype)
    v = est._uniform(kv, (n,) + theta.shape, theta.dtype)
    b = est._hard(est._perturb(theta, u, family), family)
    return b, est._conditional(theta, v, b, family)


def test_bernoulli_conditional_relaxation_has_the_logistic_law():
    b, z_tilde = map(np.asarray, conditional_draws(jnp.array([1.3]), "bernoulli", M))
    np.testing.assert_array_equal(z_tilde > 0, b > 0)
    # b ~ Bern(sigmoid(theta)) and z~ | b: the pair has the law of (H(z), z), z ~ theta + Logistic
    assert stats.kstest(z_tilde[:, 0], stats.logistic(loc=1.3).cdf).pvalue > 1e-3


def test_categorical_conditional_relaxation_has_the_gumbel_law():
    theta = jnp.asarray(CAT_LOGITS[0])
    b, z_tilde = map(np.asarray, conditional_draws(theta, "categorical", M))
    np.testing.assert_array_equal(z_tilde.argmax(-1), b.argmax(-1))
    log_p = np.asarray(jax.nn.log_softmax(theta))
    for k in range(5):  # marginals are Gumbel(log p_k); Bonferroni over the 6 checks
        assert stats.kstest(z_tilde[:, k], stats.gumbel_r(loc=log_p[k]).cdf).pvalue > 1e-3 / 6
    # the maximum is a standard Gumbel
    assert stats.kstest(z_tilde.max(-1), stats.gumbel_r().cdf).pvalue > 1e-3 / 6


# ------------------------------------------------------------------------------------------------
# RELAX: surrogate, variance gradient, optax loop
# ------------------------------------------------------------------------------------------------


def rebar_form(f, family):
    def surrogate(params, z):
        return params["eta"] * f(est._soft(z, params["temperature"], family))

    return surrogate


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_relax_with_rebar_surrogate_is_rebar(problem):
    family, f, logits = PROBLEMS[problem][:3]
    params = {"eta": jnp.array(0.7), "temperature": jnp.array(0.4)}

    @jax.jit
    def both(key):
        relaxed = relax(
            f,
            logits,
            key,
            family=family,
            num_samples=3,
            surrogate=rebar_form(f, family),
            surrogate_params=params,
        )
        return relaxed, rebar(
            f, logits, key, family=family, num_samples=3, temperature=0.4, eta=0.7
        )

    (v1, g1), (v2, g2) = both(jax.random.PRNGKey(5))
    np.testing.assert_allclose(v1, v2, rtol=1e-6)
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-6)


def test_relax_variance_grad_is_the_gradient_of_the_second_moment():
    """With c = eta * h(z) the one-sample estimate is affine in eta, so ||g||^2 is quadratic and
    a central difference is exact: compare it with the returned surrogate gradient."""
    family, f, logits = PROBLEMS["bernoulli"][:3]
    surrogate = rebar_form(f, family)
    temperature = jnp.array(0.5)

    def second_moment(eta, key):
        p = {"eta": eta, "temperature": temperature}
        return jnp.sum(relax(f, logits, key, surrogate=surrogate, surrogate_params=p)[1] ** 2)

    @jax.jit
    def check(key):
        p = {"eta": jnp.array(0.6), "temperature": temperature}
        value, g, g_params = relax_variance_grad(
            f, logits, key, surrogate=surrogate, surrogate_params=p
        )
        v_relax, g_relax = relax(f, logits, key, surrogate=surrogate, surrogate_params=p)
        h = 0.25
        fd = (second_moment(0.6 + h, key) - second_moment(0.6 - h, key)) / (2 * h)
        return value - v_relax, g - g_relax, g_params["eta"], fd

    dv, dg, g_eta, fd = map(
        np.asarray, jax.vmap(check)(jax.random.split(jax.random.PRNGKey(6), 64))
    )
    np.testing.assert_array_equal(dv, 0.0)
    np.testing.assert_allclose(dg, 0.0, atol=1e-6)
    np.testing.assert_allclose(g_eta, fd, rtol=2e-3, atol=1e-5)
    assert np.any(np.abs(fd) > 1e-2)  # the check is not vacuous


def test_relax_optax_loop_reduces_variance():
    """Learning eta (REBAR form, fixed temperature) with optax on the variance gradient gives a
    smaller error than eta = 0 (plain REINFORCE), measured on common random numbers."""
    family, f, logits = PROBLEMS["bernoulli"][:3]
    surrogate = rebar_form(f, family)
    temperature = jnp.array(0.5)
    opt = optax.adam(0.1)

    @jax.jit
    def train(key):
        def step(carry, k):
            eta, opt_state = carry
            p = {"eta": eta, "temperature": temperature}
            _, _, g_p = relax_variance_grad(
                f, logits, k, family=family, num_samples=8, surrogate=surrogate, surrogate_params=p
            )
            updates, opt_state = opt.update(g_p["eta"], opt_state)
            return (optax.apply_updates(eta, updates), opt_state), None

        eta = jnp.array(0.0)
        (eta, _), _ = jax.lax.scan(step, (eta, opt.init(eta)), jax.random.split(key, 40))
        return eta

    eta = train(jax.random.PRNGKey(8))
    assert float(eta) > 0.2

    @jax.jit
    def estimates(eta):
        p = {"eta": eta, "temperature": temperature}
        keys = jax.random.split(jax.random.PRNGKey(9), M)
        run = partial(relax, f, logits, family=family, surrogate=surrogate, surrogate_params=p)
        return jax.vmap(lambda k: run(k)[1])(keys)

    exact_grad = exact_bern(BERN_LOGITS)[1]
    g0, g1 = np.asarray(estimates(jnp.array(0.0))), np.asarray(estimates(eta))
    mean, se = paired_improvement(g0, g1, exact_grad)
    assert mean > Z * se


# ------------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------------

KEY = jax.random.PRNGKey(0)
B = jnp.asarray(BERN_LOGITS)
C = jnp.asarray(CAT_LOGITS)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: reinforce(f_bern, B, KEY, family="poisson"), "`family`"),
        (lambda: reinforce(f_bern, B, KEY, num_samples=0), "`num_samples`"),
        (lambda: reinforce(f_bern, B, KEY, num_samples=2.5), "`num_samples`"),
        (lambda: reinforce(f_bern, B, KEY, baseline="loo", num_samples=1), "`num_samples`"),
        (lambda: reinforce(f_bern, B, KEY, baseline="mean"), "`baseline`"),
        (lambda: reinforce(lambda b: b, B, KEY), "`f`"),
        (lambda: reinforce("f", B, KEY), "`f`"),
        (lambda: reinforce(f_cat, jnp.array(0.3), KEY, family="categorical"), "`logits`"),
        (lambda: reinforce(f_cat, jnp.zeros((2, 1)), KEY, family="categorical"), "`logits`"),
        (lambda: reinforce(f_bern, jnp.array([0.0, jnp.nan, 1.0]), KEY), "`logits`"),
        (lambda: arm(f_cat, C, KEY, family="categorical"), "family="),
        (lambda: disarm(f_cat, C, KEY, family="categorical"), "family="),
        (lambda: disarm(f_bern, B, KEY, num_samples=-1), "`num_samples`"),
        (lambda: arsm(f_cat, C, KEY, family="multinomial"), "`family`"),
        (lambda: rebar(f_bern, B, KEY, temperature=0.0), "`temperature`"),
        (lambda: gumbel_softmax(f_bern, B, KEY, temperature=-1.0), "`temperature`"),
        (lambda: straight_through(f_bern, B, KEY, temperature=0.0), "`temperature`"),
        (
            lambda: relax(f_bern, B, KEY, surrogate=lambda p, z: z, surrogate_params=None),
            "surrogate",
        ),
        (
            lambda: relax_variance_grad(f_bern, B, KEY, surrogate=None, surrogate_params=None),
            "`surrogate`",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_public_estimators_are_documented():
    for name in est.__all__:
        doc = getattr(est, name).__doc__
        assert doc and "**References:**" in doc and ".. math::" in doc, name


def _arsm_reference(f, theta, key, num_samples):
    """ARSM from its definition (Yin et al. 2019, eq. 14), with explicit loops over the swaps.

    ``pi = e / sum(e)`` with ``e = -log u`` (``u`` the estimator's clamped uniforms, one per
    logit and draw), ``z^{m<->j}`` the argmin of ``pi^{m<->j} exp(-theta)`` for every variable,
    ``g_c = sum_j (F_cj - mean_m F_mj)(1/K - pi_j)``.
    """
    theta = np.asarray(theta, np.float64)
    info = np.finfo(np.float32)
    u = np.clip(jax.random.uniform(key, (num_samples,) + theta.shape), info.tiny, 1 - info.eps)
    k = theta.shape[-1]
    values, grads = [], []
    for e in -np.log(np.asarray(u, np.float64)):
        pi = e / e.sum(-1, keepdims=True)
        fmat = np.zeros((k, k))
        for m in range(k):
            for j in range(k):
                perm = np.arange(k)
                perm[[m, j]] = [j, m]
                z = np.eye(k)[np.argmin(pi[..., perm] * np.exp(-theta), axis=-1)]
                fmat[m, j] = float(f(jnp.asarray(z, jnp.float32)))
        delta = fmat - fmat.mean(0, keepdims=True)
        values.append(fmat[0, 0])
        grads.append(np.einsum("...j,cj->...c", 1.0 / k - pi, delta))
    return np.mean(values), np.mean(grads, axis=0)


def test_arsm_matches_its_definition():
    value, grad = jax.jit(partial(arsm, f_cat, num_samples=3))(CAT_LOGITS, KEY)
    ref_value, ref_grad = _arsm_reference(f_cat, CAT_LOGITS, KEY, 3)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-5)


def test_arsm_memory_is_quadratic_in_the_classes():
    """The K(K-1)/2 pseudo-actions are evaluated K at a time: the compiled program holds
    O(K^2) numbers per draw (the swap table), not the K^3 of every pseudo-action at once."""

    def peak(k):
        weights = jnp.linspace(-1.0, 1.0, k)

        def run(logits, key):
            return arsm(lambda z: jnp.sum(z * weights), logits, key)

        m = jax.jit(run).lower(jnp.zeros(k), KEY).compile().memory_analysis()
        return m.temp_size_in_bytes + m.output_size_in_bytes

    k = 256
    # before: 32 MiB at K = 256 (every pseudo-action at once, K^3 / 2 numbers), now 0.5 MiB
    assert peak(k) <= 16 * k * k * 4
    assert peak(2 * k) <= 16 * (2 * k) ** 2 * 4
