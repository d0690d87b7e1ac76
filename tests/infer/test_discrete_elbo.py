"""TraceDiscrete_ELBO: the mean gradient of every unbiased estimator against the exact gradient
(hand enumeration of the discrete configurations, closed-form Gaussian expectations), the bias of
the pathwise ones where theory fixes it, and every error it promises."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from jax import random
from numpyro import handlers
from numpyro.distributions.kl import kl_divergence
from numpyro.infer import SVI
from numpyro.infer.util import log_density

import numpyro_relax as nr
from numpyro_relax.infer import TraceDiscrete_ELBO

NUM_KEYS = 2000
DATA = jnp.array([0.3, 1.5, -0.4])


def mean_and_se(elbo, model, guide, params, num_keys=NUM_KEYS, seed=1):
    def grad(key):
        return jax.grad(lambda p: elbo.loss(key, p, model, guide))(params)

    grads = jax.jit(jax.vmap(grad))(random.split(random.PRNGKey(seed), num_keys))
    mean = jax.tree.map(lambda g: np.asarray(g.mean(0)), grads)
    se = jax.tree.map(lambda g: np.asarray(g.std(0)) / np.sqrt(num_keys), grads)
    return mean, se


def assert_within(mean, se, exact, n_se=5.0):
    for name in exact:
        err = np.abs(mean[name] - np.asarray(exact[name]))
        bound = n_se * se[name] + 1e-6
        assert np.all(err <= bound), (name, mean[name], exact[name], se[name])


def enumerated_elbo(model, guide, params, sites, weight_guide=None):
    """Exact ELBO: sum over every joint value of the discrete ``sites`` ({name: values}), each
    weighted by its probability under ``weight_guide`` (default ``guide``; give the unmasked
    guide when ``guide`` masks a site: a masked site is still sampled)."""
    weight_guide = weight_guide or guide
    names = list(sites)
    grid = list(itertools.product(*(sites[n] for n in names)))
    values = {n: jnp.stack([jnp.asarray(g[i]) for g in grid]) for i, n in enumerate(names)}

    def one(v):
        lp, _ = log_density(model, (), {}, v)
        lq, _ = log_density(guide, (), {}, {**v, **params})
        lw, _ = log_density(weight_guide, (), {}, {**v, **params})
        return jnp.exp(lw) * (lp - lq)

    return jnp.sum(jax.vmap(one)(values))


def plate_values(support, size):
    return [np.array(c) for c in itertools.product(support, repeat=size)]


# ------------------------------------------------------------------------------------------
# a plate of bits and integer categories (Bernoulli + Categorical)
# ------------------------------------------------------------------------------------------


def bits_model():
    with numpyro.plate("d", 3):
        z = numpyro.sample("z", dist.Bernoulli(0.4))
        c = numpyro.sample("c", dist.Categorical(jnp.ones(3) / 3))
        numpyro.sample("x", dist.Normal(z * 1.0 + c * 0.5 + z * c * 0.3, 1.0), obs=DATA)


def bits_guide():
    a = numpyro.param("a", jnp.zeros(3))
    b = numpyro.param("b", jnp.zeros((3, 3)))
    with numpyro.plate("d", 3):
        numpyro.sample("z", dist.Bernoulli(logits=a))
        numpyro.sample("c", dist.Categorical(logits=b), infer={"estimator": "loo"})


BITS_PARAMS = {"a": jnp.array([0.2, -0.3, 0.5]), "b": jnp.array([[0.1, 0.2, -0.3]] * 3)}


@pytest.fixture(scope="module")
def bits_exact():
    sites = {"z": plate_values([0, 1], 3), "c": plate_values([0, 1, 2], 3)}
    return jax.grad(lambda p: -enumerated_elbo(bits_model, bits_guide, p, sites))(BITS_PARAMS)


@pytest.mark.parametrize("estimator", ["loo", "vargrad", "disarm"])
def test_unbiased_bits_and_categories(estimator, bits_exact):
    elbo = TraceDiscrete_ELBO(estimator, num_particles=3)
    mean, se = mean_and_se(elbo, bits_model, bits_guide, BITS_PARAMS)
    assert_within(mean, se, bits_exact)


def test_loss_value_is_the_elbo_estimate():
    """With analytic_kl=False the value is Trace_ELBO's estimate at the same key."""
    key = random.PRNGKey(3)
    ours = TraceDiscrete_ELBO("loo", num_particles=4, analytic_kl=False)
    theirs = numpyro.infer.Trace_ELBO(num_particles=4)
    a = ours.loss(key, BITS_PARAMS, bits_model, bits_guide)
    b = theirs.loss(key, BITS_PARAMS, bits_model, bits_guide)
    np.testing.assert_allclose(a, b, rtol=1e-6)


# ------------------------------------------------------------------------------------------
# one-hot sites, a continuous site depending on a discrete one, masks
# ------------------------------------------------------------------------------------------

MU, X, PRIOR = 1.5, 0.7, jnp.array([0.2, 0.5, 0.3])


def onehot_model():
    z = numpyro.sample("z", nr.OneHotCategorical(PRIOR))
    y = numpyro.sample("y", dist.Normal(MU * (z @ jnp.arange(3.0)), 1.0))
    numpyro.sample("x", dist.Normal(y, 1.0), obs=X)


def onehot_guide():
    logits = numpyro.param("logits", jnp.zeros(3))
    loc = numpyro.param("loc", jnp.zeros(3))
    z = numpyro.sample("z", nr.OneHotCategorical(logits=logits))
    numpyro.sample("y", dist.Normal(z @ loc, 0.8))


ONEHOT_PARAMS = {"logits": jnp.array([0.3, -0.2, 0.1]), "loc": jnp.array([0.1, 0.9, 1.8])}


def onehot_exact_elbo(p):
    """Sum over z of q(z) [log p(z) - log q(z) + E_{y ~ N(m, s)}(log p(y|z) + log p(x|y)
    - log q(y|z))], the Gaussian expectations in closed form."""
    log_q = jax.nn.log_softmax(p["logits"])
    s = 0.8
    half_log_2pi = 0.5 * jnp.log(2 * jnp.pi)
    total = 0.0
    for k in range(3):
        m = p["loc"][k]
        e_prior = -half_log_2pi - 0.5 * ((m - MU * k) ** 2 + s**2)
        e_lik = -half_log_2pi - 0.5 * ((X - m) ** 2 + s**2)
        entropy = half_log_2pi + 0.5 + jnp.log(s)
        total = total + jnp.exp(log_q[k]) * (
            jnp.log(PRIOR[k]) - log_q[k] + e_prior + e_lik + entropy
        )
    return total


@pytest.mark.parametrize("estimator", ["loo", "vargrad"])
def test_unbiased_onehot_with_dependent_continuous_site(estimator):
    exact = jax.grad(lambda p: -onehot_exact_elbo(p))(ONEHOT_PARAMS)
    elbo = TraceDiscrete_ELBO(estimator, num_particles=3)
    mean, se = mean_and_se(elbo, onehot_model, onehot_guide, ONEHOT_PARAMS)
    assert_within(mean, se, exact)


# ------------------------------------------------------------------------------------------
# subsampling, handlers.scale and a masked site
# ------------------------------------------------------------------------------------------

SUB_DATA = jnp.array([0.3, 1.5, -0.4, 2.0])


def sub_model():
    with numpyro.plate("d", 4, subsample_size=2) as idx:
        z = numpyro.sample("z", dist.Bernoulli(0.3))
        with handlers.mask(mask=idx != 3):
            w = numpyro.sample("w", dist.Bernoulli(0.6))
        # the masked element's value is not used: its guide gets no gradient from any estimator
        numpyro.sample(
            "x", dist.Normal(2.0 * z - jnp.where(idx != 3, w, 0), 1.0), obs=SUB_DATA[idx]
        )


def sub_guide():
    a = numpyro.param("a", jnp.zeros(4))
    c = numpyro.param("c", jnp.zeros(4))
    with numpyro.plate("d", 4, subsample_size=2) as idx:
        numpyro.sample("z", dist.Bernoulli(logits=a[idx]))
        with handlers.mask(mask=idx != 3):
            numpyro.sample("w", dist.Bernoulli(logits=c[idx]))


def full_model():
    with numpyro.plate("d", 4):
        z = numpyro.sample("z", dist.Bernoulli(0.3))
        with handlers.mask(mask=jnp.arange(4) != 3):
            w = numpyro.sample("w", dist.Bernoulli(0.6))
        w = jnp.where(jnp.arange(4) != 3, w, 0)
        numpyro.sample("x", dist.Normal(2.0 * z - w, 1.0), obs=SUB_DATA)


def full_guide(mask=True):
    a = numpyro.param("a", jnp.zeros(4))
    c = numpyro.param("c", jnp.zeros(4))
    with numpyro.plate("d", 4):
        numpyro.sample("z", dist.Bernoulli(logits=a))
        with handlers.mask(mask=(jnp.arange(4) != 3) if mask else True):
            numpyro.sample("w", dist.Bernoulli(logits=c))


SUB_PARAMS = {"a": jnp.array([0.3, -0.5, 1.0, 0.2]), "c": jnp.array([-0.2, 0.4, 0.1, 0.7])}


@pytest.mark.parametrize("estimator", ["loo", "disarm"])
def test_unbiased_with_subsampling_and_mask(estimator):
    """The mean over keys (and so over subsamples) equals the full-data exact gradient; the
    masked element of ``w`` gets no gradient."""
    sites = {"z": plate_values([0, 1], 4), "w": plate_values([0, 1], 4)}

    def unmasked():
        full_guide(mask=False)

    exact = jax.grad(lambda p: -enumerated_elbo(full_model, full_guide, p, sites, unmasked))(
        SUB_PARAMS
    )
    assert float(exact["c"][3]) == 0.0
    elbo = TraceDiscrete_ELBO(estimator, num_particles=2)
    mean, se = mean_and_se(elbo, sub_model, sub_guide, SUB_PARAMS, num_keys=4000)
    assert_within(mean, se, exact)
    assert mean["c"][3] == 0.0


# ------------------------------------------------------------------------------------------
# pathwise estimators: where theory says they are unbiased, and their measured bias elsewhere
# ------------------------------------------------------------------------------------------


def linear_model():
    """log p(x | z) is multilinear in independent bits: straight-through is unbiased."""
    with numpyro.plate("d", 3):
        z = numpyro.sample("z", dist.Bernoulli(0.4))
    numpyro.factor("lik", jnp.sum(z * jnp.array([1.0, -2.0, 0.5])) + 3.0 * z[0] * z[1])


def linear_guide():
    a = numpyro.param("a", jnp.zeros(3))
    with numpyro.plate("d", 3):
        numpyro.sample("z", dist.Bernoulli(logits=a))


def test_straight_through_unbiased_for_multilinear_costs():
    params = {"a": jnp.array([0.4, -0.6, 1.2])}
    sites = {"z": plate_values([0, 1], 3)}
    exact = jax.grad(lambda p: -enumerated_elbo(linear_model, linear_guide, p, sites))(params)
    mean, se = mean_and_se(
        TraceDiscrete_ELBO("st", num_particles=1), linear_model, linear_guide, params
    )
    assert_within(mean, se, exact)


@pytest.mark.parametrize(
    "estimator, options",
    [
        ("st", {}),
        ("st-gumbel", {"temperature": 0.5}),
        ("decoupled-st", {"temperature_forward": 1.0, "temperature_backward": 1.0}),
    ],
)
def test_pathwise_bias_is_measured(estimator, options, bits_exact):
    """On the non-linear bits model the pathwise estimators are biased for the bits' logits; the
    bias is resolved (well above the Monte Carlo error) and bounded (same order as the gradient),
    and the integer Categorical site, estimated with 'loo', stays unbiased."""
    elbo = TraceDiscrete_ELBO(estimator, num_particles=3, **options)
    mean, se = mean_and_se(elbo, bits_model, bits_guide, BITS_PARAMS)
    assert_within({"b": mean["b"]}, {"b": se["b"]}, {"b": bits_exact["b"]})
    bias = np.linalg.norm(mean["a"] - np.asarray(bits_exact["a"]))
    assert bias > 5 * np.linalg.norm(se["a"])
    assert bias < 2 * np.linalg.norm(np.asarray(bits_exact["a"]))


# ------------------------------------------------------------------------------------------
# exact KLs, per-site options, SVI
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, q",
    [
        (dist.Bernoulli(logits=jnp.array([0.3, -2.0])), dist.Bernoulli(probs=0.4)),
        (dist.Bernoulli(probs=jnp.array([0.9, 0.1])), dist.Bernoulli(logits=jnp.array([1.0, 0.0]))),
        (
            dist.Categorical(logits=jnp.array([0.3, -2.0, 1.0])),
            dist.Categorical(probs=jnp.array([0.2, 0.3, 0.5])),
        ),
        (
            dist.Categorical(logits=jnp.array([0.3, 2.0])),
            dist.Categorical(logits=jnp.array([0.0, 1.0])),
        ),
    ],
)
def test_registered_discrete_kls_match_enumeration(p, q):
    support = p.enumerate_support(expand=True)
    expected = jnp.sum(
        jnp.exp(p.log_prob(support)) * (p.log_prob(support) - q.log_prob(support)), 0
    )
    np.testing.assert_allclose(kl_divergence(p, q), expected, rtol=1e-5, atol=1e-7)
    shape, n_event = (4,) + p.batch_shape, len(p.batch_shape)
    wrapped = kl_divergence(p.expand(shape).to_event(n_event), q.expand(shape).to_event(n_event))
    np.testing.assert_allclose(wrapped, jnp.full(4, jnp.sum(expected)), rtol=1e-5)


def test_site_options_reach_the_estimator():
    """A per-site temperature changes the st-gumbel gradient; the ELBO-wide one is the default."""

    def guide(t):
        a = numpyro.param("a", jnp.zeros(3))
        with numpyro.plate("d", 3):
            numpyro.sample(
                "z", dist.Bernoulli(logits=a), infer={"estimator": "st-gumbel", "temperature": t}
            )

    def model(t):
        linear_model()

    params = {"a": jnp.array([0.4, -0.6, 1.2])}
    elbo = TraceDiscrete_ELBO("loo", num_particles=1)
    key = random.PRNGKey(0)
    g1 = jax.grad(lambda p: elbo.loss(key, p, model, guide, 0.3))(params)["a"]
    g2 = jax.grad(lambda p: elbo.loss(key, p, model, guide, 3.0))(params)["a"]
    assert not np.allclose(g1, g2)
    # a traced temperature (annealing) works under jit
    g3 = jax.jit(jax.grad(lambda p, t: elbo.loss(key, p, model, guide, t)))(params, 0.3)["a"]
    np.testing.assert_allclose(g1, g3, rtol=1e-5)


def test_svi_fits_the_exact_posterior_of_a_bit():
    """One bit, exact posterior by Bayes' rule; SVI with 'disarm' gets there."""

    def model():
        z = numpyro.sample("z", dist.Bernoulli(0.3))
        numpyro.sample("x", dist.Normal(2.0 * z, 1.0), obs=1.4)

    def guide():
        a = numpyro.param("a", 0.0)
        numpyro.sample("z", dist.Bernoulli(logits=a))

    lik = jnp.exp(dist.Normal(jnp.array([0.0, 2.0]), 1.0).log_prob(1.4))
    post = 0.3 * lik[1] / (0.3 * lik[1] + 0.7 * lik[0])
    svi = SVI(model, guide, numpyro.optim.Adam(0.05), TraceDiscrete_ELBO("disarm", num_particles=4))
    result = svi.run(random.PRNGKey(0), 1500, progress_bar=False)
    np.testing.assert_allclose(jax.nn.sigmoid(result.params["a"]), post, atol=0.03)


# ------------------------------------------------------------------------------------------
# errors: each names the site
# ------------------------------------------------------------------------------------------


def _loss(elbo, model, guide, params=None):
    return elbo.loss(random.PRNGKey(0), params or {}, model, guide)


def test_pathwise_estimator_on_integer_categorical_names_the_site():
    def model():
        numpyro.sample("c", dist.Categorical(jnp.ones(3) / 3))

    def guide():
        numpyro.sample("c", dist.Categorical(logits=jnp.zeros(3)))

    with pytest.raises(ValueError, match=r"'c'.*'st'.*\['loo', 'vargrad'\]"):
        _loss(TraceDiscrete_ELBO("st"), model, guide)


def test_enumerated_model_site_is_refused():
    def model():
        z = numpyro.sample("z", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})
        numpyro.sample("x", dist.Normal(z, 1.0), obs=0.0)

    def guide():
        pass

    with pytest.raises(ValueError, match=r"model site 'z'.*enumerate.*TraceEnum_ELBO"):
        _loss(TraceDiscrete_ELBO(), model, guide)


def test_soft_topk_latent_site_is_refused():
    def model():
        numpyro.sample("s", nr.GumbelSoftmaxTopK(2, 0.5, logits=jnp.zeros(4)))

    with pytest.raises(ValueError, match=r"'s' is a soft GumbelSoftmaxTopK"):
        _loss(TraceDiscrete_ELBO(), model, model)


def test_unknown_estimator_and_options():
    with pytest.raises(ValueError, match="unknown estimator 'nope'"):
        TraceDiscrete_ELBO("nope")
    with pytest.raises(ValueError, match=r"unknown estimator option\(s\) \['temprature'\]"):
        TraceDiscrete_ELBO("st-gumbel", temprature=0.5)

    def guide():
        numpyro.sample("z", dist.Bernoulli(0.5), infer={"estimator": "st", "temperature": 0.5})

    with pytest.raises(ValueError, match=r"'z'.*'st' takes no option\(s\) \['temperature'\]"):
        _loss(TraceDiscrete_ELBO(), linear_model_one, guide)
    with pytest.raises(
        ValueError, match=r"option\(s\) \['temperature'\] are taken by no estimator"
    ):
        _loss(TraceDiscrete_ELBO("loo", temperature=0.5), linear_model_one, guide_one)


def linear_model_one():
    numpyro.sample("z", dist.Bernoulli(0.5))


def guide_one():
    numpyro.sample("z", dist.Bernoulli(0.5))


def test_too_few_particles_for_a_score_site():
    with pytest.raises(ValueError, match=r"\['z'\].*num_particles"):
        _loss(TraceDiscrete_ELBO("loo", num_particles=1), linear_model_one, guide_one)


def test_estimator_on_a_continuous_site_is_refused():
    def model():
        numpyro.sample("y", dist.Normal(0.0, 1.0))

    def guide():
        numpyro.sample("y", dist.Normal(0.0, 1.0), infer={"estimator": "loo"})

    with pytest.raises(ValueError, match=r"'y'.*continuous and reparameterised"):
        _loss(TraceDiscrete_ELBO(), model, guide)


def test_disarm_on_dependent_bits_names_both():
    def model():
        numpyro.sample("z1", dist.Bernoulli(0.5))
        numpyro.sample("z2", dist.Bernoulli(0.5))

    def guide():
        z1 = numpyro.sample("z1", dist.Bernoulli(0.5))
        numpyro.sample("z2", dist.Bernoulli(logits=z1 - 0.5))

    with pytest.raises(ValueError, match=r"'z2' depend on the DisARM site\(s\) \['z1'\]"):
        _loss(TraceDiscrete_ELBO("disarm"), model, guide)


def test_readme_example_fits():
    """The README's TraceDiscrete_ELBO block runs as written and finds which point is which."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Discrete latents, the estimator chosen at fit time", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace = {}
    exec(  # the quick start's imports, then the block
        "import jax, jax.numpy as jnp, numpyro, numpyro.distributions as dist, optax\n"
        "from jax import random\nfrom numpyro.infer import SVI\n" + code,
        namespace,
    )
    y = jnp.array([-1.1, 0.9, 1.2, -0.8, 1.0, -1.3])
    result = namespace["svi"].run(random.PRNGKey(0), 400, y, progress_bar=False)
    probs = jax.nn.sigmoid(result.params["logits"])
    assert np.all((probs > 0.9) == (y > 0)) and np.all((probs < 0.1) == (y < 0))
