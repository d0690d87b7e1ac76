"""Tests of numpyro_relax.infer.autoguide.AutoDiscrete."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro import handlers
from numpyro.infer import SVI, Predictive, init_to_value
from numpyro.infer.autoguide import AutoDAIS, AutoDelta, AutoDiagonalNormal, AutoNormal
from scipy import stats

import numpyro_relax as nr
from numpyro_relax.infer import TraceDiscrete_ELBO
from numpyro_relax.infer.autoguide import AutoDiscrete

PROBS3 = jnp.array([0.2, 0.3, 0.5])


def mixed_model(x):
    """Every supported discrete family (with .expand/.to_event), a global and a local
    continuous site, a deterministic site, in a plate over the data."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    bits = numpyro.sample("bits", dist.Bernoulli(logits=0.4).expand([2]).to_event(1))
    with numpyro.plate("data", x.shape[0]):
        z = numpyro.sample("z", dist.Bernoulli(probs=0.3))
        c = numpyro.sample("c", dist.Categorical(probs=PROBS3))
        o = numpyro.sample("o", nr.OneHotCategorical(logits=jnp.log(PROBS3)))
        w = numpyro.sample("w", dist.Normal(mu + z + c + o @ jnp.arange(3.0) + bits.sum(), 1.0))
        numpyro.deterministic("d", w + c)
        numpyro.sample("x", dist.Normal(w, 1.0), obs=x)


X = jnp.array([0.5, 2.0, -1.0, 3.0])


def base_of(fn):
    while hasattr(fn, "base_dist"):
        fn = fn.base_dist
    return fn


def guide_trace(guide, *args, seed=0, params=None):
    guide = handlers.substitute(guide, data=params) if params else guide
    return handlers.trace(handlers.seed(guide, seed)).get_trace(*args)


def test_guide_sites_shapes_and_prior_initialisation():
    guide = AutoDiscrete(mixed_model, continuous=AutoNormal)
    tr = guide_trace(guide, X)
    shapes = {name: jnp.shape(site["value"]) for name, site in tr.items()}
    assert shapes["bits_auto_logits"] == (2,) and shapes["bits"] == (2,)
    assert shapes["z_auto_logits"] == (4,) and shapes["z"] == (4,)
    assert shapes["c_auto_logits"] == (4, 3) and shapes["c"] == (4,)
    assert shapes["o_auto_logits"] == (4, 3) and shapes["o"] == (4, 3)
    assert shapes["mu"] == () and shapes["w"] == (4,) and "w_auto_loc" in tr
    assert {"x", "d"}.isdisjoint(tr)
    assert isinstance(base_of(tr["z"]["fn"]), dist.BernoulliLogits)
    assert isinstance(base_of(tr["c"]["fn"]), dist.CategoricalLogits)
    assert isinstance(base_of(tr["o"]["fn"]), nr.OneHotCategorical)
    assert tr["bits"]["fn"].event_shape == (2,)
    assert [f.name for f in tr["c"]["cond_indep_stack"]] == ["data"]
    # initial logits: the prior's (probs or logits alike)
    np.testing.assert_allclose(tr["z_auto_logits"]["value"], np.log(0.3 / 0.7), rtol=1e-5)
    np.testing.assert_allclose(tr["bits_auto_logits"]["value"], 0.4)
    np.testing.assert_allclose(
        jax.nn.softmax(tr["c_auto_logits"]["value"]), np.tile(PROBS3, (4, 1)), rtol=1e-5
    )
    np.testing.assert_allclose(
        jax.nn.softmax(tr["o_auto_logits"]["value"]), np.tile(PROBS3, (4, 1)), rtol=1e-5
    )


def dependent_prior_model():
    """The prior of the assignments depends on a continuous site."""
    weights = numpyro.sample("weights", dist.Dirichlet(jnp.ones(3)))
    with numpyro.plate("data", 5):
        numpyro.sample("c", dist.Categorical(weights))


def test_initial_logits_are_the_prior_at_the_continuous_guides_start():
    start = jnp.array([0.1, 0.6, 0.3])
    guide = AutoDiscrete(
        dependent_prior_model,
        continuous=AutoNormal,
        init_loc_fn=init_to_value(values={"weights": start}),
    )
    tr = guide_trace(guide)
    np.testing.assert_allclose(
        jax.nn.softmax(tr["c_auto_logits"]["value"]), np.tile(start, (5, 1)), rtol=1e-5
    )


def subsampled_model(x):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", 10, subsample_size=4) as idx:
        z = numpyro.sample("z", dist.Bernoulli(0.3))
        c = numpyro.sample("c", dist.Categorical(PROBS3))
        w = numpyro.sample("w", dist.Normal(mu + z + c, 1.0))
        numpyro.sample("x", dist.Normal(w, 1.0), obs=x[idx])


def test_subsampled_plate_full_size_logits_and_one_subsample_for_both_parts():
    guide = AutoDiscrete(subsampled_model, continuous=AutoNormal)
    x = jnp.arange(10.0)
    tr = guide_trace(guide, x)
    assert tr["z_auto_logits"]["value"].shape == (10,)
    assert tr["c_auto_logits"]["value"].shape == (10, 3)
    # mark every datum's parameters with its index: the sites show which data they used
    code = jnp.arange(10.0)
    params = {
        "z_auto_logits": code,
        "c_auto_logits": jnp.stack([code, jnp.zeros(10), jnp.zeros(10)], -1),
        "w_auto_loc": code,
    }
    for seed in range(3):
        tr = guide_trace(guide, x, seed=seed, params=params)
        idx = np.asarray(tr["data"]["value"])
        assert idx.shape == (4,) and len(set(idx.tolist())) == 4
        np.testing.assert_array_equal(base_of(tr["z"]["fn"]).logits, idx)
        np.testing.assert_array_equal(base_of(tr["c"]["fn"]).logits[:, 0], idx)
        np.testing.assert_array_equal(base_of(tr["w"]["fn"]).loc, idx)


def small_model(x):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", x.shape[0]):
        z = numpyro.sample("z", dist.Bernoulli(probs=0.3))
        numpyro.sample("x", dist.Normal(mu + 2.0 * z, 1.0), obs=x)


X_SMALL = jnp.array([0.3, 2.5, 1.1])
SMALL_PARAMS = {
    "z_auto_logits": jnp.array([-1.0, 2.0, 0.3]),
    "mu_auto_loc": jnp.array(0.4),
    "mu_auto_scale": jnp.array(0.7),
}


def exact_small_elbo(params):
    """The ELBO of the product guide, in closed form: Bernoulli sums and Normal moments."""
    q = np.asarray(jax.nn.sigmoid(params["z_auto_logits"]), np.float64)
    m, s = float(params["mu_auto_loc"]), float(params["mu_auto_scale"])
    x = np.asarray(X_SMALL, np.float64)
    log_prior_z = q * np.log(0.3) + (1 - q) * np.log(0.7)
    entropy_z = -(q * np.log(q) + (1 - q) * np.log(1 - q))
    # E (x - mu - 2z)^2 = (x - m - 2z)^2 + s^2, averaged over z
    sq = q * (x - m - 2) ** 2 + (1 - q) * (x - m) ** 2 + s**2
    loglik = -0.5 * np.log(2 * np.pi) - 0.5 * sq
    log_prior_mu = -0.5 * np.log(2 * np.pi) - 0.5 * (m**2 + s**2)
    entropy_mu = 0.5 * np.log(2 * np.pi * np.e * s**2)
    return np.sum(log_prior_z + entropy_z + loglik) + log_prior_mu + entropy_mu


def test_loss_is_an_unbiased_estimate_of_the_exact_elbo():
    guide = AutoDiscrete(small_model, continuous=AutoNormal)
    elbo = TraceDiscrete_ELBO(estimator="loo", num_particles=2)
    keys = jax.random.split(jax.random.key(0), 5000)

    def loss(key):
        return elbo.loss(key, SMALL_PARAMS, small_model, guide, X_SMALL)

    guide_trace(guide, X_SMALL)  # set the prototype up outside the vmap
    losses = np.asarray(jax.jit(jax.vmap(loss))(keys), np.float64)
    se = losses.std() / np.sqrt(losses.size)
    assert abs(-losses.mean() - exact_small_elbo(SMALL_PARAMS)) < 5 * se


def test_predictive_and_sample_posterior_draw_from_the_fitted_guide():
    guide = AutoDiscrete(mixed_model, continuous=AutoNormal)
    params = {
        name: site["value"]
        for name, site in guide_trace(guide, X).items()
        if site["type"] == "param"
    }
    params["c_auto_logits"] = jnp.log(jnp.array([[0.7, 0.2, 0.1]] * 4))
    n = 4000
    pred = Predictive(mixed_model, guide=guide, params=params, num_samples=n)
    draws = pred(jax.random.key(1), X)
    assert draws["x"].shape == (n, 4)
    latent = Predictive(guide, params=params, num_samples=n)(jax.random.key(2), X)
    assert latent["c"].shape == (n, 4) and latent["o"].shape == (n, 4, 3)
    freq = np.mean(np.asarray(latent["c"]) == 0)
    assert abs(freq - 0.7) < 5 * np.sqrt(0.7 * 0.3 / (4 * n))

    post = guide.sample_posterior(jax.random.key(3), params, X, sample_shape=(n,))
    assert {"mu", "bits", "z", "c", "o", "w", "d"} <= set(post)
    assert post["bits"].shape == (n, 2) and post["w"].shape == (n, 4)
    # deterministic sites recomputed from the draws of both parts
    np.testing.assert_allclose(post["d"], post["w"] + post["c"], rtol=1e-6)
    freq = np.mean(np.asarray(post["c"]) == 0)
    assert abs(freq - 0.7) < 5 * np.sqrt(0.7 * 0.3 / (4 * n))
    two = guide.sample_posterior(jax.random.key(3), params, X, sample_shape=(2, 3))
    assert two["o"].shape == (2, 3, 4, 3) and two["d"].shape == (2, 3, 4)


def test_median_is_the_mode_and_quantiles_invert_the_cdf():
    guide = AutoDiscrete(mixed_model, continuous=AutoNormal)
    params = {
        name: site["value"]
        for name, site in guide_trace(guide, X).items()
        if site["type"] == "param"
    }
    params["z_auto_logits"] = jnp.array([-1.0, 0.5, 3.0, -0.2])
    params["c_auto_logits"] = jnp.log(jnp.array([[0.5, 0.2, 0.3], [0.1, 0.2, 0.7]] * 2))
    params["o_auto_logits"] = params["c_auto_logits"]
    median = guide.median(params)
    np.testing.assert_array_equal(median["z"], [0, 1, 1, 0])
    np.testing.assert_array_equal(median["c"], [0, 2, 0, 2])
    np.testing.assert_array_equal(median["o"], np.eye(3)[[0, 2, 0, 2]])
    np.testing.assert_allclose(median["mu"], params["mu_auto_loc"])
    assert "d" not in median
    quantiles = guide.quantiles(params, [0.05, 0.45, 0.55, 0.95])
    # P(z = 0) = sigmoid(-logit): [0.73, 0.38, 0.047, 0.55]
    np.testing.assert_array_equal(
        quantiles["z"], [[0, 0, 1, 0], [0, 1, 1, 0], [0, 1, 1, 1], [1, 1, 1, 1]]
    )
    # CDFs [0.5, 0.7, 1] and [0.1, 0.3, 1]
    np.testing.assert_array_equal(
        quantiles["c"], [[0, 0, 0, 0], [0, 2, 0, 2], [1, 2, 1, 2], [2, 2, 2, 2]]
    )
    np.testing.assert_array_equal(quantiles["o"], np.eye(3)[np.asarray(quantiles["c"])])
    assert quantiles["mu"].shape == (4,) and "d" not in quantiles


@pytest.mark.parametrize("continuous", [AutoDelta, AutoDiagonalNormal])
def test_other_continuous_autoguides(continuous):
    guide = AutoDiscrete(small_model, continuous=continuous)
    tr = guide_trace(guide, X_SMALL)
    assert tr["z"]["value"].shape == (3,) and tr["mu"]["value"].shape == ()
    elbo = TraceDiscrete_ELBO(estimator="loo", num_particles=4)
    params = {name: site["value"] for name, site in tr.items() if site["type"] == "param"}
    value, grads = jax.value_and_grad(
        lambda p: elbo.loss(jax.random.key(0), p, small_model, guide, X_SMALL)
    )(params)
    assert np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads.values())
    assert np.any(grads["z_auto_logits"] != 0)


def test_all_discrete_model_needs_no_continuous_guide():
    def model():
        with numpyro.plate("data", 3):
            numpyro.sample("z", dist.Bernoulli(0.3))

    guide = AutoDiscrete(model)
    tr = guide_trace(guide)
    assert set(tr) == {"data", "z_auto_logits", "z"} and guide.continuous_guide is None


def test_infer_settings_reach_the_guide_sites():
    guide = AutoDiscrete(small_model, continuous=AutoNormal, infer={"z": {"estimator": "disarm"}})
    assert guide_trace(guide, X_SMALL)["z"]["infer"] == {"estimator": "disarm"}


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
def test_unsupported_discrete_site_is_named():
    def model():
        numpyro.sample("n", dist.Poisson(3.0))

    with pytest.raises(ValueError, match="site 'n' has distribution Poisson"):
        guide_trace(AutoDiscrete(model))


def test_continuous_sites_without_a_continuous_guide_are_named():
    with pytest.raises(ValueError, match="not discrete \\('mu'\\).*continuous=AutoNormal"):
        guide_trace(AutoDiscrete(small_model), X_SMALL)


def test_enumerated_site_is_named():
    enumerated = handlers.infer_config(
        small_model, config_fn=lambda msg: {"enumerate": "parallel"} if msg["name"] == "z" else {}
    )
    with pytest.raises(ValueError, match="site 'z' has infer=\\{'enumerate'"):
        guide_trace(AutoDiscrete(enumerated, continuous=AutoNormal), X_SMALL)


def test_bad_continuous_guides_are_refused():
    with pytest.raises(TypeError, match="not an instance"):
        AutoDiscrete(small_model, continuous=AutoNormal(small_model))
    with pytest.raises(ValueError, match="AutoDAIS evaluates the model's density"):
        AutoDiscrete(small_model, continuous=AutoDAIS)


# ------------------------------------------------------------------------------------------
# Gaussian mixture (NumPyro's GMM tutorial model)
# ------------------------------------------------------------------------------------------
K = 2


def gmm(data):
    weights = numpyro.sample("weights", dist.Dirichlet(0.5 * jnp.ones(K)))
    scale = numpyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with numpyro.plate("components", K):
        locs = numpyro.sample("locs", dist.Normal(0.0, 10.0))
    with numpyro.plate("data", data.shape[0]):
        assignment = numpyro.sample("assignment", dist.Categorical(weights))
        numpyro.sample("obs", dist.Normal(locs[assignment], scale), obs=data)


def test_gmm_recovers_cluster_locations_and_assignments():
    """80 points from 0.3 N(-3, 1) + 0.7 N(3, 1); AutoDiscrete(AutoNormal) + LOO estimator, the
    tutorial's initialisation (uniform weights, scale sqrt(var/2), locs at two data points).

    - locations: within 5 standard errors sigma/sqrt(n_k) of the truth, and within one posterior
      standard deviation (the same sigma/sqrt(n_k)) of the oracle estimate, the mean of each
      true cluster (what the posterior mean is when the assignments are known);
    - weights: within one posterior standard deviation sqrt(f (1 - f) / n) of the fraction f
      of each true cluster;
    - assignments (the guide's mode, up to relabelling): misassigned points at most the
      expected number of errors of the Bayes classifier with the true parameters plus 5
      standard deviations (a Poisson-binomial with p_i = min_k p(k | x_i)).
    """
    n = 80
    k_labels, k_noise = jax.random.split(jax.random.key(0))
    labels = np.asarray(jax.random.bernoulli(k_labels, 0.7, (n,)), int)
    true_locs = np.array([-3.0, 3.0])
    data = jnp.asarray(true_locs[labels] + np.asarray(jax.random.normal(k_noise, (n,))))
    start = {
        "weights": jnp.ones(K) / K,
        "scale": jnp.sqrt(data.var() / 2),
        "locs": data[jnp.array([0, 1])],
    }
    guide = AutoDiscrete(gmm, continuous=AutoNormal, init_loc_fn=init_to_value(values=start))
    svi = SVI(gmm, guide, optax.adam(0.05), TraceDiscrete_ELBO(estimator="loo", num_particles=4))
    result = svi.run(jax.random.key(1), 800, data, progress_bar=False)
    median = guide.median(result.params)
    order = np.argsort(np.asarray(median["locs"]))
    locs = np.asarray(median["locs"])[order]
    assignment = np.argsort(order)[np.asarray(median["assignment"])]
    counts = np.bincount(labels, minlength=K)
    se = 1.0 / np.sqrt(counts)
    oracle = np.array([np.asarray(data)[labels == k].mean() for k in range(K)])
    assert np.all(np.abs(locs - true_locs) < 5 * se)
    assert np.all(np.abs(locs - oracle) < se)
    log_joint = np.log([0.3, 0.7]) + stats.norm.logpdf(np.asarray(data)[:, None], true_locs, 1.0)
    p_error = np.exp(log_joint.min(1) - np.logaddexp(*log_joint.T))
    errors = np.sum(assignment != labels)
    assert errors <= p_error.sum() + 5 * np.sqrt(np.sum(p_error * (1 - p_error)))
    weights = np.asarray(median["weights"])[order]
    fractions = counts / n
    assert np.all(np.abs(weights - fractions) < np.sqrt(fractions * (1 - fractions) / n))


def test_gmm_guide_works_with_svi_to_arviz():
    pytest.importorskip("arviz")
    data = jnp.array([-3.1, -2.5, 2.9, 3.4, 3.0])
    guide = AutoDiscrete(gmm, continuous=AutoNormal)
    svi = SVI(gmm, guide, optax.adam(0.05), TraceDiscrete_ELBO(estimator="loo", num_particles=2))
    params = svi.get_params(svi.init(jax.random.key(0), data))
    idata = nr.diagnostics.svi_to_arviz(
        gmm, guide, params, data, key=jax.random.key(1), num_samples=20
    )
    posterior = idata["posterior"]
    assert posterior["assignment"].shape == (1, 20, 5)
    assert posterior["locs"].shape == (1, 20, 2)
