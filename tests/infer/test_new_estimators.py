"""The pathwise estimators ReinMax, Gapped Straight-Through and Gumbel-Rao (issue #12): what
theory fixes about their means (exact, by enumerating the discrete sample where the backward pass
is deterministic given it), Gumbel-Rao's variance against ST Gumbel-softmax's, their bias on the
toy f(b) = (b - 0.499)^2 at logit 0, and their use as estimator= names of TraceDiscrete_ELBO."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax import random

import numpyro_relax as nr
from numpyro_relax import estimators as E
from numpyro_relax.infer import TraceDiscrete_ELBO
from numpyro_relax.infer.pathwise import gst_logits, gst_surrogate, reinmax_surrogate


def pair(theta):
    return jnp.stack([jnp.zeros_like(theta), theta], axis=-1)


def expected_given_sample(surrogate, logits, weights, **kw):
    """E_D[d/dlogits (w . surrogate(logits, D))] for a deterministic-given-D backward pass, by
    enumerating the K one-hot values D of one categorical with logits (K,)."""
    k = logits.shape[-1]
    probs = jax.nn.softmax(logits)

    def grad_at(d):
        return jax.grad(lambda t: jnp.dot(weights, surrogate(t, d, **kw)))(logits)

    grads = jax.vmap(grad_at)(jnp.eye(k))
    return probs @ grads


def softmax_jacobian(logits):
    p = jax.nn.softmax(logits)
    return jnp.diag(p) - jnp.outer(p, p)


def mc(estimator, f, logits, n, seed=0, **kw):
    """Mean and standard error over n independent one-sample estimates."""

    def one(key):
        return estimator(f, logits, key, **kw)[1]

    g = jax.jit(jax.vmap(one))(random.split(random.PRNGKey(seed), n))
    return np.asarray(g.mean(0)), np.asarray(g.std(0)) / np.sqrt(n), np.asarray(g.var(0))


# ------------------------------------------------------------------------------------------
# ReinMax
# ------------------------------------------------------------------------------------------

LOGITS5 = jnp.array([0.4, -1.0, 0.3, 1.2, -0.2])
C5 = jnp.array([1.0, -2.0, 0.5, 0.3, -0.7])


def test_reinmax_mean_is_straight_through_for_linear_f():
    """For f(D) = c . D, straight-through's gradient A(pi) c is exact, and ReinMax at
    temperature 1 has the same mean: E[A((pi + D)/2)] = 3/4 A(pi) (Liu et al., 2023)."""
    exact = softmax_jacobian(LOGITS5) @ C5
    mean = expected_given_sample(reinmax_surrogate, LOGITS5, C5, temperature=1.0)
    np.testing.assert_allclose(mean, exact, rtol=1e-5, atol=1e-6)
    # at another temperature the identity does not hold (the check can fail)
    other = expected_given_sample(reinmax_surrogate, LOGITS5, C5, temperature=3.0)
    assert np.max(np.abs(other - exact)) > 1e-2
    # the functional form samples D correctly: its mean matches the enumeration
    m, se, _ = mc(E.reinmax, lambda d: jnp.dot(C5, d), LOGITS5, 4000, family="categorical")
    assert np.all(np.abs(m - exact) <= 5 * se + 1e-6), (m, exact, se)


def test_reinmax_bits_mean_is_straight_through_for_linear_f():
    theta = jnp.array([0.7, -1.5, 0.0])
    c = jnp.array([0.5, -1.0, 2.0])
    exact = jax.nn.sigmoid(theta) * jax.nn.sigmoid(-theta) * c
    for d in range(3):
        w = jnp.array([0.0, c[d]])
        mean = expected_given_sample(reinmax_surrogate, pair(theta[d]), w, temperature=1.0)
        np.testing.assert_allclose(mean[1], exact[d], rtol=1e-5)
    m, se, _ = mc(E.reinmax, lambda b: jnp.dot(c, b), theta, 4000)
    assert np.all(np.abs(m - exact) <= 5 * se + 1e-6), (m, exact, se)


def test_reinmax_temperature_below_one_is_a_value_error():
    f = lambda b: jnp.sum(b)  # noqa: E731
    with pytest.raises(ValueError, match="reinmax: `temperature` must be >= 1"):
        E.reinmax(f, jnp.zeros(2), random.PRNGKey(0), temperature=0.5)

    def guide():
        with numpyro.plate("d", 2):
            numpyro.sample("z", dist.Bernoulli(logits=numpyro.param("a", jnp.zeros(2))))

    def model():
        with numpyro.plate("d", 2):
            numpyro.sample("z", dist.Bernoulli(logits=jnp.zeros(2)))

    elbo = TraceDiscrete_ELBO("reinmax", temperature=0.9)
    with pytest.raises(ValueError, match="must be >= 1"):
        elbo.loss(random.PRNGKey(0), {"a": jnp.zeros(2)}, model, guide)


# ------------------------------------------------------------------------------------------
# Gapped straight-through
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("adaptive", [False, True])
def test_gst_moved_logits_have_the_gap(adaptive):
    """Backward logits (Fan et al., 2022): the sampled category moved to the maximum, every other
    one at least the gap below it, the ones already that far below untouched; Jacobian I."""
    theta = jnp.array([0.4, -1.0, 0.3, 1.2, 0.9])
    top = jnp.max(theta)
    for i in range(5):
        d = jnp.eye(5)[i]
        moved = gst_logits(theta, d, 0.7, adaptive)
        gap = 0.7
        if adaptive:
            pi = jax.nn.softmax(theta)[i] * (1 - 1e-5)
            gap = -np.log1p(-pi) / pi
            assert gap >= 1.0
        np.testing.assert_allclose(moved[i], top, rtol=1e-6)
        others = np.delete(np.asarray(moved), i)
        assert np.all(others <= top - gap + 1e-5)
        far = np.delete(np.asarray(theta <= top - gap), i)
        np.testing.assert_allclose(others[far], np.delete(np.asarray(theta), i)[far])
        np.testing.assert_allclose(
            jax.jacobian(lambda t, d=d: gst_logits(t, d, 0.7, adaptive))(theta), np.eye(5)
        )
        value = gst_surrogate(theta, d, 0.5, 0.7, adaptive)
        np.testing.assert_array_equal(value, d)  # forward exactly the sample
        jac = jax.jacobian(lambda t, d=d: gst_surrogate(t, d, 0.5, 0.7, adaptive))(theta)
        np.testing.assert_allclose(jac, softmax_jacobian(moved / 0.5) / 0.5, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------------------------------
# the toy f(b) = (b - 0.499)^2 at logit 0: exact gradient 0.0005
# ------------------------------------------------------------------------------------------

TOY_EXACT = 0.0005


def toy(b):
    return jnp.sum((b - 0.499) ** 2)


def toy_slope(b):
    return 2.0 * (b - 0.499)  # what every pathwise estimator differentiates at the sample


def gumbel_scale(temperature):
    """c(t) = E[sigmoid'(L/t)/t], L standard logistic, by quadrature: the mean of the backward
    factor of ST Gumbel-softmax at logit 0 (1/6 at t = 1), conditionally symmetric in sign(L)."""
    x = np.linspace(-60.0, 60.0, 400_001)

    def ds(y):
        s = 1.0 / (1.0 + np.exp(-y))
        return s * (1.0 - s)

    return np.trapezoid(ds(x / temperature) / temperature * ds(x), x)


def test_pathwise_bias_on_the_toy():
    """Exact means (enumeration of b where the backward pass is a function of b, quadrature over
    the noise otherwise), each checked against the estimator's samples; the relative biases
    recorded here: st 0, reinmax 0, gst -21%, gst adaptive -36%, st-gumbel / gumbel-rao at
    t=1 -33% and at t=0.5 -14% (for this f every one of them is a positive multiple c of
    E f'(b) = 0.002)."""
    mean_slope = 0.5 * (toy_slope(1.0) + toy_slope(0.0))  # 0.002
    s_gap = jax.nn.sigmoid(1.0)
    pi = 0.5 * (1 - 1e-5)
    k_ad = -np.log1p(-pi) / pi
    s_ad = jax.nn.sigmoid(k_ad)
    factors = {  # per-sample gradient = factor * f'(b) (deterministic given b)
        "st": (E.st, {}, 0.25),
        "reinmax": (E.reinmax, {}, 0.25),
        "gst": (E.gst, {}, float(s_gap * (1 - s_gap))),
        "gst adaptive": (E.gst, {"adaptive": True}, float(s_ad * (1 - s_ad))),
    }
    biases = {}
    for name, (est, kw, c) in factors.items():
        # the functional estimator's samples are exactly c f'(b)
        _, g = jax.jit(lambda k, est=est, kw=kw: est(toy, jnp.zeros(1), k, **kw))(random.PRNGKey(1))
        b = jnp.where(g > 0, 1.0, 0.0)
        np.testing.assert_allclose(g, c * toy_slope(b), rtol=1e-5)
        biases[name] = c * mean_slope / TOY_EXACT - 1.0
    # ReinMax at logit 0 by enumeration of the pair's one-hot values
    rm = expected_given_sample(
        reinmax_surrogate, pair(jnp.float32(0.0)), jnp.array([0.0, 1.0]), temperature=1.0
    )
    np.testing.assert_allclose(rm[1], 0.25, rtol=1e-6)  # the mean factor, times E f'(b)
    for t in (1.0, 0.5):
        c = gumbel_scale(t)
        if t == 1.0:
            np.testing.assert_allclose(c, 1 / 6, rtol=1e-6)
        for name, est, kw in (
            ("st-gumbel", E.st_gumbel, {}),
            ("gumbel-rao", E.gumbel_rao, {"num_conditionals": 10}),
        ):
            n = 4000
            g = jax.jit(
                jax.vmap(
                    lambda k, est=est, kw=kw, t=t: est(toy, jnp.zeros(1), k, temperature=t, **kw)[1]
                )
            )(random.split(random.PRNGKey(2), n))[:, 0]
            # |g| = factor * |f'(b)| with E[factor] = c: the scale of the backward pass
            a = np.abs(np.asarray(g)) / np.where(np.asarray(g) > 0, 1.002, 0.998)
            assert abs(a.mean() - c) <= 5 * a.std() / np.sqrt(n), (name, t, a.mean(), c)
            biases[f"{name} t={t}"] = c * mean_slope / TOY_EXACT - 1.0
    print("relative bias on (b - 0.499)^2 at logit 0:", {k: round(v, 3) for k, v in biases.items()})
    assert abs(biases["st"]) < 1e-6 and abs(biases["reinmax"]) < 1e-6
    np.testing.assert_allclose(biases["gst"], 4 * float(s_gap * (1 - s_gap)) - 1, rtol=1e-6)
    assert -0.22 < biases["gst"] < -0.2 and -0.37 < biases["gst adaptive"] < -0.35
    np.testing.assert_allclose(biases["st-gumbel t=1.0"], 4 / 6 - 1, rtol=1e-5)


# ------------------------------------------------------------------------------------------
# Gumbel-Rao: ST Gumbel-softmax's mean, lower variance
# ------------------------------------------------------------------------------------------

W5 = jnp.array([0.3, 1.0, -0.5, 0.8, 0.1])


def quadratic(d):
    return jnp.dot(C5, d) + jnp.dot(W5, d) ** 2


@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_gumbel_rao_has_the_mean_of_st_gumbel_and_less_variance(temperature):
    n = 3000
    kw = {"family": "categorical", "temperature": temperature}
    m_st, se_st, v_st = mc(E.st_gumbel, quadratic, LOGITS5, n, seed=3, **kw)
    m_gr, se_gr, v_gr = mc(E.gumbel_rao, quadratic, LOGITS5, n, seed=4, num_conditionals=10, **kw)
    assert np.all(np.abs(m_gr - m_st) <= 5 * np.hypot(se_st, se_gr)), (m_gr, m_st)
    # variance: the sampled D's spread stays, the noise's shrinks ~ 1/M; the ratio of two sample
    # variances of n = 3000 draws has relative s.e. below 10%, so 0.8 is far outside the noise
    ratio = v_gr.sum() / v_st.sum()
    print(f"t={temperature}: var(gumbel-rao) / var(st-gumbel) = {ratio:.3f}")
    assert ratio < 0.8, ratio
    # one conditional draw is ST Gumbel-softmax again (equal variance up to noise)
    _, _, v_one = mc(E.gumbel_rao, quadratic, LOGITS5, n, seed=5, num_conditionals=1, **kw)
    assert 0.8 < v_one.sum() / v_st.sum() < 1.25


def test_gumbel_rao_and_gst_option_errors():
    with pytest.raises(ValueError, match="num_conditionals"):
        E.gumbel_rao(toy, jnp.zeros(1), random.PRNGKey(0), num_conditionals=0)
    with pytest.raises(ValueError, match="gap"):
        E.gst(toy, jnp.zeros(1), random.PRNGKey(0), gap=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        E.gumbel_rao(toy, jnp.zeros(1), random.PRNGKey(0), temperature=0.0)


# ------------------------------------------------------------------------------------------
# as estimator= names of TraceDiscrete_ELBO (one-hot and bits)
# ------------------------------------------------------------------------------------------

PRIOR4 = jnp.array([0.2, -0.5, 0.1, 0.4])
C4 = jnp.array([0.5, -1.0, 0.8, -0.2])
PHI4 = jnp.array([0.3, -0.2, 0.6, -0.4])
PRIOR3 = jnp.array([0.2, -0.4, 1.0])
C3 = jnp.array([0.7, -0.3, 1.2])
PHI3 = jnp.array([0.5, -1.0, 0.1])


def onehot_model():
    z = numpyro.sample("z", nr.OneHotCategorical(logits=PRIOR4))
    numpyro.factor("f", jnp.dot(z, C4))


def onehot_guide():
    numpyro.sample("z", nr.OneHotCategorical(logits=numpyro.param("phi", PHI4)))


def bits_model():
    with numpyro.plate("d", 3):
        z = numpyro.sample("z", dist.Bernoulli(logits=PRIOR3))
    numpyro.factor("f", jnp.dot(z, C3))


def bits_guide():
    with numpyro.plate("d", 3):
        numpyro.sample("z", dist.Bernoulli(logits=numpyro.param("phi", PHI3)))


def kl_grad(phi, family):
    """Gradient of the analytic KL(q || p) that TraceDiscrete_ELBO uses for the site."""
    if family == "onehot":
        kl = lambda t: jnp.sum(  # noqa: E731
            jax.nn.softmax(t) * (jax.nn.log_softmax(t) - jax.nn.log_softmax(PRIOR4))
        )
    else:

        def kl(t):
            q = jax.nn.sigmoid(t)
            lq1, lq0 = jax.nn.log_sigmoid(t), jax.nn.log_sigmoid(-t)
            lp1, lp0 = jax.nn.log_sigmoid(PRIOR3), jax.nn.log_sigmoid(-PRIOR3)
            return jnp.sum(q * (lq1 - lp1) + (1 - q) * (lq0 - lp0))

    return jax.grad(kl)(phi)


def expected_elbo_grad(surrogate, family, **kw):
    """Mean gradient of the ELBO = E[c . z] - KL(q || p) (the KL analytic, the cost linear in
    the value) for an estimator whose backward pass is a function of the sample: enumerate it."""
    if family == "onehot":
        g = expected_given_sample(surrogate, PHI4, C4, **kw)
        return np.asarray(g - kl_grad(PHI4, family))
    g = jnp.stack(
        [
            expected_given_sample(surrogate, pair(PHI3[d]), jnp.array([0.0, C3[d]]), **kw)[1]
            for d in range(3)
        ]
    )
    return np.asarray(g - kl_grad(PHI3, family))


def elbo_grads(family, n, seed, estimator, **options):
    model, guide, phi = (
        (onehot_model, onehot_guide, PHI4) if family == "onehot" else (bits_model, bits_guide, PHI3)
    )
    elbo = TraceDiscrete_ELBO(estimator, **options)

    def grad(key):
        return jax.grad(lambda p: -elbo.loss(key, p, model, guide))({"phi": phi})["phi"]

    g = jax.jit(jax.vmap(grad))(random.split(random.PRNGKey(seed), n))
    return np.asarray(g.mean(0)), np.asarray(g.std(0)) / np.sqrt(n), np.asarray(g.var(0))


@pytest.mark.parametrize("family", ["onehot", "bits"])
@pytest.mark.parametrize(
    "estimator, options, surrogate",
    [
        ("reinmax", {}, lambda t, d: reinmax_surrogate(t, d, 1.0)),
        ("reinmax", {"temperature": 2.0}, lambda t, d: reinmax_surrogate(t, d, 2.0)),
        ("gst", {"temperature": 0.5}, lambda t, d: gst_surrogate(t, d, 0.5, 1.0, False)),
        ("gst", {"adaptive": True}, lambda t, d: gst_surrogate(t, d, 1.0, 1.0, True)),
    ],
)
def test_elbo_mean_gradient_by_enumeration(family, estimator, options, surrogate):
    """TraceDiscrete_ELBO(estimator=...) has the mean gradient of its surrogate, by enumeration
    of the sample (cost linear in the value); ReinMax at temperature 1 is then exact."""
    expected = expected_elbo_grad(surrogate, family)
    mean, se, _ = elbo_grads(family, 2000, 7, estimator, **options)
    assert np.all(np.abs(mean - expected) <= 5 * se + 1e-6), (mean, expected, se)
    if estimator == "reinmax" and not options:  # exact: the mean of straight-through
        phi, c = (PHI4, C4) if family == "onehot" else (PHI3, C3)
        if family == "onehot":
            exact = softmax_jacobian(phi) @ c
        else:
            exact = jax.nn.sigmoid(phi) * jax.nn.sigmoid(-phi) * c
        np.testing.assert_allclose(expected, exact - kl_grad(phi, family), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("family", ["onehot", "bits"])
def test_elbo_gumbel_rao_matches_st_gumbel_mean_with_less_variance(family):
    n = 2000
    m_st, se_st, v_st = elbo_grads(family, n, 8, "st-gumbel", temperature=0.5)
    m_gr, se_gr, v_gr = elbo_grads(family, n, 9, "gumbel-rao", temperature=0.5)
    assert np.all(np.abs(m_gr - m_st) <= 5 * np.hypot(se_st, se_gr)), (m_gr, m_st)
    assert v_gr.sum() < 0.8 * v_st.sum(), (v_gr, v_st)

    # a per-site option reaches it
    def guide():
        numpyro.sample(
            "z",
            nr.OneHotCategorical(logits=numpyro.param("phi", PHI4)),
            infer={"estimator": "gumbel-rao", "num_conditionals": 3},
        )

    loss = TraceDiscrete_ELBO("st").loss(random.PRNGKey(0), {"phi": PHI4}, onehot_model, guide)
    assert np.isfinite(loss)


# ------------------------------------------------------------------------------------------
# unbiased: double control variates, IndeCateR, stick-breaking DisARM
# ------------------------------------------------------------------------------------------

THETA_B = jnp.array([0.4, -1.1, 0.2, 1.5])
CB = jnp.array([0.8, -0.5, 1.2, 0.3])


def bits_interactions(b):
    """Pairwise and higher-order interactions; smooth on the cube (double_cv needs grad f)."""
    return jnp.dot(CB, b) + 2.0 * b[0] * b[1] - 1.5 * b[1] * b[2] * b[3] + jnp.dot(CB, b) ** 2


THETA_C = jnp.array([[0.5, -0.3, 1.0, 0.0, -1.2], [-0.4, 0.9, 0.2, -0.8, 0.6]])
A55 = jnp.array(np.random.default_rng(0).normal(size=(5, 5)), dtype=jnp.float32)
C55 = jnp.array([[1.0, -0.5, 0.3, 2.0, -1.0], [0.2, 0.7, -1.3, 0.4, 0.9]])


def cat_interactions(x):
    return x[0] @ A55 @ x[1] + jnp.sum(C55 * x) + (x[0] @ A55 @ x[1]) ** 2


def exact_bits_grad():
    configs = jnp.array(np.array(list(np.ndindex(*(2,) * 4)), dtype=np.float32))
    fs = jax.vmap(bits_interactions)(configs)

    def expectation(t):
        logp = configs * jax.nn.log_sigmoid(t) + (1 - configs) * jax.nn.log_sigmoid(-t)
        return jnp.sum(jnp.exp(logp.sum(-1)) * fs)

    return np.asarray(jax.grad(expectation)(THETA_B))


def exact_cat_grad():
    eye = jnp.eye(5)
    configs = jnp.stack([jnp.stack([eye[i], eye[j]]) for i in range(5) for j in range(5)])
    fs = jax.vmap(cat_interactions)(configs)

    def expectation(t):
        logp = jnp.sum(configs * jax.nn.log_softmax(t, axis=-1), axis=(1, 2))
        return jnp.sum(jnp.exp(logp) * fs)

    return np.asarray(jax.grad(expectation)(THETA_C))


@pytest.mark.parametrize(
    "name, estimator, kw",
    [
        ("double_cv", E.double_cv, {"num_samples": 4}),
        ("double_cv alpha=0.5", E.double_cv, {"num_samples": 2, "alpha": 0.5}),
        ("indecater", E.indecater, {}),
    ],
)
def test_unbiased_on_bits_with_interactions(name, estimator, kw):
    exact = exact_bits_grad()
    m, se, _ = mc(estimator, bits_interactions, THETA_B, 4000, seed=11, family="bernoulli", **kw)
    assert np.all(np.abs(m - exact) <= 5 * se + 1e-6), (name, m, exact, se)


@pytest.mark.parametrize(
    "name, estimator, kw",
    [
        ("indecater", E.indecater, {"family": "categorical"}),
        ("disarm_categorical", E.disarm_categorical, {"num_samples": 2}),
        ("double_cv", E.double_cv, {"family": "categorical", "num_samples": 3}),
    ],
)
def test_unbiased_on_five_class_categoricals(name, estimator, kw):
    exact = exact_cat_grad()
    m, se, _ = mc(estimator, cat_interactions, THETA_C, 4000, seed=12, **kw)
    assert np.all(np.abs(m - exact) <= 5 * se + 1e-6), (name, m, exact, se)


def test_double_cv_reduces_the_variance_of_loo():
    """On a near-linear f the Taylor control variate removes most of LOO's variance (for a
    linear f, all of it: the estimate is then exact)."""
    lin = lambda b: jnp.dot(CB, b)  # noqa: E731
    exact = np.asarray(jax.nn.sigmoid(THETA_B) * jax.nn.sigmoid(-THETA_B) * CB)
    _, g = E.double_cv(lin, THETA_B, random.PRNGKey(0), num_samples=2)
    np.testing.assert_allclose(g, exact, rtol=1e-5, atol=1e-7)
    f = lambda b: jnp.dot(CB, b) + 0.1 * b[0] * b[1]  # noqa: E731
    _, _, v_loo = mc(E.loo, f, THETA_B, 2000, seed=13, num_samples=4)
    _, _, v_dcv = mc(E.double_cv, f, THETA_B, 2000, seed=13, num_samples=4)
    assert v_dcv.sum() < 0.2 * v_loo.sum(), (v_dcv, v_loo)


def test_indecater_is_exact_for_separable_f():
    """f = sum of functions of one variable: the per-variable expectation is the whole one."""
    f = lambda x: jnp.sum(C55 * x) + jnp.sum((x @ jnp.arange(5.0)) ** 2)  # noqa: E731
    exact = jax.grad(
        lambda t: (
            jnp.sum(jax.nn.softmax(t) * C55) + jnp.sum(jax.nn.softmax(t) * jnp.arange(5.0) ** 2)
        )
    )(THETA_C)
    _, g = E.indecater(f, THETA_C, random.PRNGKey(0), family="categorical", num_samples=1)
    np.testing.assert_allclose(g, exact, rtol=1e-5, atol=1e-6)


def test_disarm_categorical_samples_the_categorical_law():
    """The stick-breaking value is an exact sample: its frequencies match softmax(theta)."""
    n = 4000
    # f(x) = 1[x_0 = k] per category k through the value estimate 1/2 (f(x) + f(x~))
    freqs = []
    for k in range(5):
        f = lambda x, k=k: x[0, k]  # noqa: E731
        v, _ = E.disarm_categorical(f, THETA_C, random.PRNGKey(k), num_samples=n)
        freqs.append(v)
    p = np.asarray(jax.nn.softmax(THETA_C[0]))
    se = np.sqrt(p * (1 - p) / n)  # antithetic pairs only lower it
    assert np.all(np.abs(np.array(freqs) - p) <= 5 * se), (freqs, p)
