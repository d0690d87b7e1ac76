"""Tests of numpyro_relax.infer.reparam: RelaxReparam and GumbelSoftmaxReparam."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.distributions.transforms import SigmoidTransform
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.infer.util import log_density
from scipy import optimize, special, stats

import numpyro_relax as nr
from numpyro_relax.infer.reparam import GumbelSoftmaxReparam, RelaxReparam, relaxed_bernoulli

CENTRES = jnp.array([-2.0, 0.0, 2.0])
PRIOR = jnp.array([0.2, 0.5, 0.3])
X = jnp.array([1.5, 2.5, -1.0, 0.2])
N = X.shape[0]
T = 0.5
PARAMS = {
    "logits": jnp.array([[0.3, -0.2, 0.5], [1.0, 0.0, -1.0], [0.0, 0.0, 0.0], [-0.5, 2.0, 0.1]]),
    "bit_logits": jnp.array([0.4, -1.0, 2.0, 0.0]),
}


# ------------------------------------------------------------------------------------------
# RelaxReparam
# ------------------------------------------------------------------------------------------
def make_program(one_hot, bit, *, is_model):
    """A model (or guide) sampling a one-hot ``z`` and a bit ``b`` per datum from the given
    distribution constructors, so that the discrete and the hand-relaxed versions share code."""

    def model(x):
        with numpyro.plate("data", N):
            z = numpyro.sample("z", one_hot(probs=PRIOR))
            b = numpyro.sample("b", bit(logits=jnp.array(0.3)))
            numpyro.sample("x", dist.Normal(z @ CENTRES + b, 1.0), obs=x)

    def guide(x):
        logits = numpyro.param("logits", PARAMS["logits"])
        bit_logits = numpyro.param("bit_logits", PARAMS["bit_logits"])
        with numpyro.plate("data", N):
            numpyro.sample("z", one_hot(logits=logits))
            numpyro.sample("b", bit(logits=bit_logits))

    return model if is_model else guide


def hand_relaxed(t, straight_through):
    """The relaxed laws written out by hand, as a user would without the reparameteriser."""
    if straight_through:
        return (
            lambda **kw: nr.RelaxedOneHotCategoricalStraightThrough(t, **kw),
            lambda **kw: nr.RelaxedBernoulliStraightThrough(t, **kw),
        )
    return (
        lambda **kw: nr.RelaxedOneHotCategorical(t, **kw),
        lambda **kw: dist.TransformedDistribution(
            nr.LogitRelaxedBernoulli(t, **kw), SigmoidTransform()
        ),
    )


def relaxed_by_handler(t, straight_through):
    config = {"z": RelaxReparam(t, straight_through), "b": RelaxReparam(t, straight_through)}
    model = make_program(nr.OneHotCategorical, dist.Bernoulli, is_model=True)
    guide = make_program(nr.OneHotCategorical, dist.Bernoulli, is_model=False)
    return handlers.reparam(model, config=config), handlers.reparam(guide, config=config)


def relaxed_by_hand(t, straight_through):
    one_hot, bit = hand_relaxed(t, straight_through)
    return make_program(one_hot, bit, is_model=True), make_program(one_hot, bit, is_model=False)


def loss_and_grad(model, guide, params):
    def loss(p):
        return Trace_ELBO(num_particles=4).loss(jax.random.key(3), p, model, guide, X)

    return jax.value_and_grad(loss)(params)


@pytest.mark.parametrize("straight_through", [False, True])
def test_relax_reparam_gives_the_loss_and_gradient_of_the_hand_relaxed_program(straight_through):
    value, grad = loss_and_grad(*relaxed_by_handler(T, straight_through), PARAMS)
    value_ref, grad_ref = loss_and_grad(*relaxed_by_hand(T, straight_through), PARAMS)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, value_ref, rtol=1e-6)
    for name in PARAMS:
        assert np.all(grad_ref[name] != 0)
        np.testing.assert_allclose(grad[name], grad_ref[name], rtol=1e-5, atol=1e-6)


def test_relaxed_sites_have_the_relaxed_laws_and_values_in_the_unit_interval():
    model, _ = relaxed_by_handler(T, False)
    tr = handlers.trace(handlers.seed(model, 0)).get_trace(X)
    z, b = tr["z"], tr["b"]
    assert isinstance(z["fn"].base_dist, nr.RelaxedOneHotCategorical)
    assert isinstance(b["fn"].base_dist.base_dist, nr.LogitRelaxedBernoulli)
    assert z["value"].shape == (N, 3) and b["value"].shape == (N,)
    np.testing.assert_allclose(z["value"].sum(-1), 1.0, rtol=1e-6)
    assert np.all((b["value"] > 0) & (b["value"] < 1))
    # not rounded: a relaxed value is strictly inside (the discrete law would give 0/1)
    assert np.all((z["value"] > 0) & (z["value"] < 1))


def test_relaxed_bernoulli_density_is_numpyros_binary_concrete():
    """An independent implementation: NumPyro's RelaxedBernoulliLogits (Logistic + sigmoid)."""
    t = jnp.array([0.3, 0.7, 1.5])
    logits = jnp.array([-1.0, 0.5, 2.0])
    value = jnp.array([[0.1, 0.4, 0.95], [0.6, 0.02, 0.5]])
    np.testing.assert_allclose(
        relaxed_bernoulli(t, logits=logits).log_prob(value),
        dist.RelaxedBernoulliLogits(t, logits).log_prob(value),
        rtol=1e-5,
    )
    probs = jax.nn.sigmoid(logits)
    np.testing.assert_allclose(
        relaxed_bernoulli(t, probs=probs).log_prob(value),
        relaxed_bernoulli(t, logits=logits).log_prob(value),
        rtol=1e-5,
    )


def test_relaxed_bernoulli_density_stays_exact_where_the_value_rounds():
    """At temperature 0.02 most float32 samples sit at the clamps of the sigmoid, where
    logit(z) no longer recovers the sample's logit y; the site's log density (with y as
    intermediate, as in a NumPyro trace) is still the exact density of the binary Concrete."""
    t, logits = 0.02, jnp.array(0.7)
    d = relaxed_bernoulli(t, logits=logits)
    value, inter = d.sample_with_intermediates(jax.random.key(0), (1000,))
    y = np.asarray(inter[0][0], np.float64)
    assert np.mean(np.abs(special.logit(np.asarray(value, np.float64)) - y) > 1) > 0.5
    # log p(z) = log p(y) - log |dz/dy|, with log dz/dy = -softplus(-y) - softplus(y)
    expected = stats.logistic.logpdf(y, loc=0.7 / t, scale=1 / t) + (
        np.logaddexp(0, -y) + np.logaddexp(0, y)
    )
    lp = d.log_prob(value, inter)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp, expected, rtol=1e-4)


def test_relaxed_bernoulli_rounds_to_the_bernoulli_law_at_low_temperature():
    p, n = 0.3, 20000
    value = relaxed_bernoulli(0.01, probs=p).sample(jax.random.key(1), (n,))
    frac = float(np.mean(np.asarray(value) > 0.5))
    assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / n)


# (wrapper, plate size, plate dim): each case also sits in a plate, as model sites do.
WRAPS = {
    "plate": (lambda d, m: d, N, -1),
    "expand": (lambda d, m: d.expand([2, N]), 2, -2),
    "to_event": (lambda d, m: d.expand([2, N]).to_event(1), 2, -1),
    "mask": (lambda d, m: d.expand([2, N]).mask(m), 2, -2),
    "mask_to_event": (lambda d, m: d.expand([2, N]).mask(m).to_event(2), 2, -1),
}
MASK = jnp.array([[True, False, True, True], [False, True, True, False]])


def _layers(fn):
    out = []
    while hasattr(fn, "base_dist"):
        out.append((type(fn).__name__, fn.batch_shape, fn.event_shape))
        fn = fn.base_dist
    return out, fn


@pytest.mark.parametrize("wrap", list(WRAPS))
@pytest.mark.parametrize("family", ["one_hot", "bit"])
def test_relax_reparam_keeps_plates_expand_to_event_and_mask(wrap, family):
    relaxed_one_hot, relaxed_bit = hand_relaxed(T, False)

    def program(one_hot, bit):
        def model():
            wrapper, size, dim = WRAPS[wrap]
            if family == "one_hot":
                fn = wrapper(one_hot(logits=PARAMS["logits"]), MASK)
            else:
                fn = wrapper(bit(logits=PARAMS["bit_logits"]), MASK)
            with numpyro.plate("rows", size, dim=dim):
                numpyro.sample("z", fn)

        return model

    discrete = handlers.reparam(
        program(nr.OneHotCategorical, dist.Bernoulli), config={"z": RelaxReparam(T)}
    )
    by_hand = program(relaxed_one_hot, relaxed_bit)
    site = handlers.trace(handlers.seed(discrete, 0)).get_trace()["z"]
    ref = handlers.trace(handlers.seed(by_hand, 0)).get_trace()["z"]
    layers, base = _layers(site["fn"])
    layers_ref, _ = _layers(ref["fn"])
    assert layers == layers_ref
    assert not isinstance(base, (nr.OneHotCategorical, dist.BernoulliLogits))
    np.testing.assert_array_equal(site["value"], ref["value"])

    def score(s):  # as NumPyro's own trace code: intermediates only when there are some
        return s["fn"].log_prob(s["value"], *([s["intermediates"]] if s["intermediates"] else []))

    lp = score(site)
    np.testing.assert_allclose(lp, score(ref), rtol=1e-6)
    if wrap == "mask":
        mask = np.asarray(MASK)
        assert np.all(np.asarray(lp)[~mask] == 0) and np.all(np.asarray(lp)[mask] != 0)


def test_relax_reparam_temperature_can_be_traced_and_annealed_under_jit():
    """Temperature as a model argument (e.g. a schedule of the step count): the jitted loss and
    gradients, including d loss / d temperature, equal those of the hand-relaxed program."""

    def as_argument(build):
        def model(x, t):
            return build(t, False)[0](x)

        def guide(x, t):
            return build(t, False)[1](x)

        return model, guide

    def loss(build, params, t):
        model, guide = as_argument(build)
        return Trace_ELBO(num_particles=4).loss(jax.random.key(5), params, model, guide, X, t)

    grad = jax.jit(jax.value_and_grad(lambda p, t: loss(relaxed_by_handler, p, t), argnums=(0, 1)))
    (value, (g_params, g_t)) = grad(PARAMS, jnp.array(0.8))
    value_ref, (g_params_ref, g_t_ref) = jax.value_and_grad(
        lambda p, t: loss(relaxed_by_hand, p, t), argnums=(0, 1)
    )(PARAMS, 0.8)
    np.testing.assert_allclose(value, value_ref, rtol=1e-6)
    np.testing.assert_allclose(g_t, g_t_ref, rtol=1e-5)
    assert g_t != 0
    for name in PARAMS:
        np.testing.assert_allclose(g_params[name], g_params_ref[name], rtol=1e-5, atol=1e-6)


def test_relax_reparam_temperature_can_be_a_learnable_param():
    def tempered(build):
        def model(x):
            t = numpyro.param("t", 0.8, constraint=constraints.positive)
            return build(t, False)[0](x)

        def guide(x):
            t = numpyro.param("t", 0.8, constraint=constraints.positive)
            return build(t, False)[1](x)

        return model, guide

    svi = SVI(*tempered(relaxed_by_handler), optax.adam(0.1), Trace_ELBO())
    svi_ref = SVI(*tempered(relaxed_by_hand), optax.adam(0.1), Trace_ELBO())
    state, state_ref = svi.init(jax.random.key(0), X), svi_ref.init(jax.random.key(0), X)
    for _ in range(3):
        state, loss = jax.jit(svi.update)(state, X)
        state_ref, loss_ref = svi_ref.update(state_ref, X)
        np.testing.assert_allclose(loss, loss_ref, rtol=1e-5)
    t, t_ref = svi.get_params(state)["t"], svi_ref.get_params(state_ref)["t"]
    assert t != 0.8
    np.testing.assert_allclose(t, t_ref, rtol=1e-5)


def test_reparams_leave_observed_sites_alone():
    def model():
        numpyro.sample("b", dist.Bernoulli(probs=0.3), obs=jnp.array(1.0))
        numpyro.sample(
            "z", nr.RelaxedOneHotCategorical(T, probs=PRIOR), obs=jnp.array([0.2, 0.5, 0.3])
        )

    config = {"b": RelaxReparam(T), "z": GumbelSoftmaxReparam()}
    tr = handlers.trace(handlers.seed(handlers.reparam(model, config=config), 0)).get_trace()
    assert list(tr) == ["b", "z"]
    assert isinstance(tr["b"]["fn"], dist.BernoulliProbs) and tr["b"]["is_observed"]
    assert isinstance(tr["z"]["fn"], nr.RelaxedOneHotCategorical) and tr["z"]["is_observed"]


@pytest.mark.parametrize(
    "fn, match",
    [
        (dist.Categorical(probs=PRIOR), "site 'c' is an integer Categorical.*OneHotCategorical"),
        (dist.Categorical(logits=PRIOR).expand([3]), "site 'c' is an integer Categorical"),
        (dist.Poisson(2.0), "site 'c' has distribution Poisson"),
        (dist.Normal(0.0, 1.0).expand([2]).to_event(1), "site 'c' has distribution Normal"),
        (nr.RelaxedOneHotCategorical(T, probs=PRIOR), "site 'c' has distribution Relaxed"),
    ],
)
def test_relax_reparam_refuses_what_it_cannot_relax(fn, match):
    model = handlers.reparam(lambda: numpyro.sample("c", fn), config={"c": RelaxReparam(T)})
    with pytest.raises(ValueError, match=match):
        handlers.seed(model, 0)()


def test_relax_reparam_temperature_of_the_wrong_shape_names_the_site():
    def model():
        with numpyro.plate("data", N):
            numpyro.sample("z", dist.Bernoulli(logits=PARAMS["bit_logits"]))

    reparam = handlers.reparam(model, config={"z": RelaxReparam(jnp.ones(3))})
    with pytest.raises(ValueError, match="site 'z'.*temperature of shape \\(3,\\)"):
        handlers.seed(reparam, 0)()


@pytest.mark.parametrize("temperature", [0.0, -1.0, jnp.array([1.0, -0.5]), True, "hot"])
def test_relax_reparam_refuses_bad_temperatures(temperature):
    with pytest.raises(ValueError, match="`temperature` must be"):
        RelaxReparam(temperature)


# ------------------------------------------------------------------------------------------
# GumbelSoftmaxReparam
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", list(WRAPS))
@pytest.mark.parametrize(
    "cls",
    [
        nr.RelaxedOneHotCategorical,
        nr.ExpRelaxedOneHotCategorical,
        nr.RelaxedOneHotCategoricalStraightThrough,
    ],
)
def test_gumbel_softmax_reparam_draws_the_same_value_from_the_same_key(cls, wrap):
    """The first sample site of a seeded program gets the same key, so the noise site draws the
    Gumbel noise the relaxed site would have drawn: the value is the same number."""
    wrapper, size, dim = WRAPS[wrap]

    def model():
        with numpyro.plate("rows", size, dim=dim):
            numpyro.sample("z", wrapper(cls(T, logits=PARAMS["logits"]), MASK))

    reparam = handlers.reparam(model, config={"z": GumbelSoftmaxReparam()})
    tr = handlers.trace(handlers.seed(reparam, 0)).get_trace()
    ref = handlers.trace(handlers.seed(model, 0)).get_trace()["z"]
    assert list(tr) == ["rows", "z_gumbel", "z"]
    assert tr["z"]["type"] == "deterministic"
    noise = tr["z_gumbel"]
    assert noise["value"].shape == ref["value"].shape
    assert noise["fn"].event_shape == ref["fn"].event_shape
    assert noise["fn"].batch_shape == ref["fn"].batch_shape
    np.testing.assert_allclose(tr["z"]["value"], ref["value"], rtol=1e-6, atol=1e-30)
    lp = noise["fn"].log_prob(noise["value"])
    expected = stats.gumbel_r.logpdf(np.asarray(noise["value"], np.float64))
    if "mask" in wrap:  # the noise is masked where the site was
        expected = np.where(np.asarray(MASK)[..., None], expected, 0.0)
    n_sum = len(noise["fn"].event_shape) - 1
    expected = expected.sum(axis=tuple(range(-1 - n_sum, 0)))
    np.testing.assert_allclose(lp, expected, rtol=1e-5)


def composed(model):
    """A model with a OneHotCategorical site ``z``: relaxed, then rewritten as Gumbel noise."""
    relaxed = handlers.reparam(model, config={"z": RelaxReparam(T)})
    return handlers.reparam(relaxed, config={"z": GumbelSoftmaxReparam()})


def test_gumbel_softmax_reparam_composes_with_relax_reparam():
    model, _ = relaxed_by_hand(T, False)
    discrete = make_program(nr.OneHotCategorical, dist.Bernoulli, is_model=True)
    tr = handlers.trace(handlers.seed(composed(discrete), 0)).get_trace(X)
    ref = handlers.trace(handlers.seed(model, 0)).get_trace(X)
    assert tr["z"]["type"] == "deterministic" and tr["z_gumbel"]["value"].shape == (N, 3)
    np.testing.assert_allclose(tr["z"]["value"], ref["z"]["value"], rtol=1e-6)


DELTA = 0.7  # logit difference of the two categories


def two_category_model(x):
    with numpyro.plate("data", x.shape[0]):
        z = numpyro.sample("z", nr.RelaxedOneHotCategorical(T, logits=jnp.array([DELTA, 0.0])))
        numpyro.sample("x", dist.Normal(z @ jnp.array([-2.0, 2.0]), 1.0), obs=x)


def binary_concrete_logpdf(z1):
    """Density of z_1 = sigmoid((DELTA + d)/T), d ~ Logistic(0, 1), by change of variables."""
    y = special.logit(z1)
    return stats.logistic.logpdf(y, loc=DELTA / T, scale=1 / T) + (
        np.logaddexp(0, -y) + np.logaddexp(0, y)
    )


def test_gumbel_softmax_reparam_log_density_is_the_noise_density():
    """Transformed model: log p(g) + log p(x | z(g)); original at the same value:
    log p_Concrete(z) + log p(x | z). The difference is log p(g) - log p_Concrete(z), with both
    densities computed here independently (scipy's Gumbel; the logistic change of variables)."""
    model_g = handlers.reparam(two_category_model, config={"z": GumbelSoftmaxReparam()})
    lp_g, tr = log_density(handlers.seed(model_g, 1), (X,), {}, {})
    z = tr["z"]["value"]
    g = np.asarray(tr["z_gumbel"]["value"], np.float64)
    lp, _ = log_density(two_category_model, (X,), {}, {"z": z})
    z1 = np.asarray(z[:, 0], np.float64)
    assert np.all((z1 > 1e-6) & (z1 < 1 - 1e-6))  # no rounding: scipy's logit is exact here
    expected = stats.gumbel_r.logpdf(g).sum() - binary_concrete_logpdf(z1).sum()
    np.testing.assert_allclose(lp_g - lp, expected, rtol=1e-4)


def test_gumbel_softmax_reparam_value_has_the_concrete_law():
    """Kolmogorov-Smirnov test of z_1 against the exact CDF sigmoid(T logit(u) - DELTA) of the
    binary Concrete, at the 0.1% level (critical value 1.95 / sqrt(n))."""
    model_g = handlers.reparam(two_category_model, config={"z": GumbelSoftmaxReparam()})
    n = 4000
    x = jnp.zeros(n)
    z1 = np.asarray(handlers.trace(handlers.seed(model_g, 2)).get_trace(x)["z"]["value"][:, 0])
    ks = stats.kstest(z1, lambda u: special.expit(T * special.logit(u) - DELTA))
    assert ks.statistic < 1.95 / np.sqrt(n)


T_B, MU_B, X_B = 0.2, np.array([-2.0, 2.0]), 0.3


def bimodal_model():
    z = numpyro.sample("z", nr.RelaxedOneHotCategorical(T_B, logits=jnp.zeros(2)))
    numpyro.sample("x", dist.Normal(z @ jnp.asarray(MU_B), 1.0), obs=X_B)


def exact_bimodal_posterior():
    """P(z_1 > 1/2 | x) and P(z near a vertex | x) of the relaxed model, by quadrature over
    y = logit z_1 ~ Logistic(0, 1/T_B) (z_1 = sigmoid(y))."""
    y = np.linspace(-400.0, 400.0, 400_001)
    z1 = special.expit(y)
    log_w = stats.logistic.logpdf(y, 0.0, 1 / T_B) + stats.norm.logpdf(
        X_B, MU_B @ np.stack([z1, 1 - z1]), 1.0
    )
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    return w[y > 0].sum(), w[np.abs(y) > special.logit(0.95)].sum()


def optimal_normal_over_noise():
    """The mean-field Normal q(g) = N(m1, s1^2) N(m2, s2^2) that maximises the exact ELBO.

    E_q log Gumbel(g) = -m - exp(-m + s^2/2) and the entropy are closed forms; the likelihood
    depends on g only through d = g_1 - g_2 ~ N(m1 - m2, s1^2 + s2^2), a 1-D quadrature.
    """
    u = np.linspace(-10.0, 10.0, 20_001)
    weights = stats.norm.pdf(u) * (u[1] - u[0])

    def negative_elbo(p):
        m1, m2, s1, s2 = p[0], p[1], np.exp(p[2]), np.exp(p[3])
        z1 = special.expit(((m1 - m2) + np.hypot(s1, s2) * u) / T_B)
        loglik = stats.norm.logpdf(X_B, MU_B[0] * z1 + MU_B[1] * (1 - z1), 1.0) @ weights
        log_prior = -m1 - np.exp(-m1 + s1**2 / 2) - m2 - np.exp(-m2 + s2**2 / 2)
        entropy = np.log(s1 * s2) + np.log(2 * np.pi * np.e)
        return -(loglik + log_prior + entropy)

    opts = {"xatol": 1e-8, "fatol": 1e-12, "maxiter": 20_000}
    res = optimize.minimize(negative_elbo, np.zeros(4), method="Nelder-Mead", options=opts)
    m1, m2, s1, s2 = res.x[0], res.x[1], np.exp(res.x[2]), np.exp(res.x[3])
    d = stats.norm(m1 - m2, np.hypot(s1, s2))
    edge = T_B * special.logit(0.95)
    return d.sf(0.0), d.sf(edge) + d.cdf(-edge)


def test_gumbel_softmax_reparam_lets_autonormal_fit_a_bimodal_relaxed_posterior():
    """One relaxed 2-category z, prior uniform, one observation between the two centres: the
    posterior of z has a mode at each vertex, P(z_1 > 1/2 | x) = 0.315 (the discrete model,
    by enumeration: 0.231). AutoNormal over the Gumbel noise, fitted with SVI, is checked
    against the best mean-field Normal over the noise (found here by exact quadrature and
    Nelder-Mead): P(z_1 > 1/2) = 0.337, and 66% of the mass within 0.05 of a vertex (exact
    posterior: 43%), so the family keeps both modes and the proportions within 0.02, while
    sharpening them towards the vertices. Tolerance: 5 standard errors of a proportion over the
    predictive draws."""
    p_exact, near_exact = exact_bimodal_posterior()
    p_opt, near_opt = optimal_normal_over_noise()
    np.testing.assert_allclose([p_exact, near_exact], [0.315, 0.429], atol=5e-4)
    np.testing.assert_allclose([p_opt, near_opt], [0.337, 0.662], atol=5e-4)
    model_g = handlers.reparam(bimodal_model, config={"z": GumbelSoftmaxReparam()})
    guide = AutoNormal(model_g)
    steps = 1500
    optim = optax.adam(optax.exponential_decay(0.05, steps, 0.01))
    result = SVI(model_g, guide, optim, Trace_ELBO(num_particles=16)).run(
        jax.random.key(0), steps, progress_bar=False
    )
    n = 20_000
    z = Predictive(model_g, guide=guide, params=result.params, num_samples=n)(jax.random.key(1))
    z1 = np.asarray(z["z"][:, 0], np.float64)
    p_fit = np.mean(z1 > 0.5)
    near_fit = np.mean((z1 < 0.05) | (z1 > 0.95))
    assert abs(p_fit - p_opt) < 5 * np.sqrt(p_opt * (1 - p_opt) / n)
    assert abs(near_fit - near_opt) < 5 * np.sqrt(near_opt * (1 - near_opt) / n)
