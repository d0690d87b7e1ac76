"""Tests of numpyro_relax.diagnostics under the installed ArviZ."""

from __future__ import annotations

import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.distributions import biject_to
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta, AutoNormal

from numpyro_relax import _diagnostics_backends as _backends
from numpyro_relax import diagnostics
from numpyro_relax.diagnostics import (
    elbo_grad_variance,
    psis_khat,
    svi_to_arviz,
    vertex_distance,
)

az = pytest.importorskip("arviz")

N_OBS = 20
PRIOR_SCALE = 10.0


def model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, PRIOR_SCALE))
    numpyro.deterministic("two_mu", 2.0 * mu)
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, 1.0), obs=y)


@pytest.fixture(scope="module")
def data():
    return jax.random.normal(jax.random.key(0), (N_OBS,)) + 2.0


@pytest.fixture(scope="module")
def exact_posterior(data):
    """Conjugate Normal posterior of mu: (mean, sd)."""
    prec = 1.0 / PRIOR_SCALE**2 + N_OBS
    return float(jnp.sum(data)) / prec, prec**-0.5


@pytest.fixture(scope="module")
def fit(data):
    guide = AutoNormal(model)
    svi = SVI(model, guide, numpyro.optim.Adam(0.1), Trace_ELBO())
    result = svi.run(jax.random.key(1), 200, data, progress_bar=False)
    return guide, result.params


@pytest.fixture(scope="module")
def idata(fit, data):
    guide, params = fit
    return svi_to_arviz(model, guide, params, data, key=jax.random.key(2), num_samples=400)


def _groups(obj) -> set[str]:
    if hasattr(obj, "groups") and callable(obj.groups):  # InferenceData
        return set(obj.groups())
    return set(obj.children)  # DataTree


# --------------------------------------------------------------------------------------------
# svi_to_arviz
# --------------------------------------------------------------------------------------------


def test_arviz_groups_and_shapes(idata, data):
    assert {"posterior", "posterior_predictive", "log_likelihood", "observed_data"} <= _groups(
        idata
    )
    post = idata["posterior"]
    assert set(post.data_vars) == {"mu", "two_mu"}
    assert post["mu"].shape == (1, 400)
    np.testing.assert_allclose(post["two_mu"].values, 2 * post["mu"].values, rtol=1e-6)
    assert idata["posterior_predictive"]["obs"].shape == (1, 400, N_OBS)
    assert idata["log_likelihood"]["obs"].shape == (1, 400, N_OBS)
    np.testing.assert_array_equal(idata["observed_data"]["obs"].values, np.asarray(data))


def test_arviz_values(idata, data, exact_posterior):
    mean, sd = exact_posterior
    mu = idata["posterior"]["mu"].values.ravel()
    # a 200-step AutoNormal fit of a conjugate Gaussian posterior: close to exact
    assert abs(mu.mean() - mean) < 0.2 * sd + 5 * sd / np.sqrt(mu.size)
    # log likelihood: Normal(y_i | mu_s, 1) evaluated at the posterior draws
    expected = -0.5 * (np.asarray(data)[None] - mu[:, None]) ** 2 - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(
        idata["log_likelihood"]["obs"].values[0], expected, rtol=1e-5, atol=1e-5
    )
    # replicated data, not the observations: y_rep = mu_s + e, var = var(mu) + 1
    rep = idata["posterior_predictive"]["obs"].values[0]
    assert not np.any(rep == np.asarray(data)[None])
    resid = rep - mu[:, None]
    assert abs(resid.mean()) < 5 / np.sqrt(resid.size)
    assert abs(resid.var() - 1.0) < 5 * np.sqrt(2.0 / resid.size)


def test_arviz_functions_run(idata):
    summary = az.summary(idata)
    assert {"mu", "two_mu"} <= set(summary.index)
    loo = az.loo(idata)
    if _backends._arviz_major() >= 1:  # arviz_stats' ELPDData has attributes
        elpd, pareto_k = loo.elpd, loo.pareto_k
    else:
        elpd, pareto_k = loo["elpd_loo"], loo["pareto_k"]
    assert np.isfinite(elpd)
    assert np.all(np.asarray(pareto_k) < 0.7)
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if _backends._arviz_major() >= 1:  # arviz_plots renamed plot_ppc
        pc = az.plot_ppc_dist(idata, num_samples=20, backend="matplotlib")
        assert len(pc.get_viz("predictive_dist", "obs")) == 20
    else:
        az.plot_ppc(idata, num_pp_samples=20, random_seed=0)
    plt.close("all")


def test_arviz_chains(fit, data):
    guide, params = fit
    two = svi_to_arviz(
        model, guide, params, data, key=jax.random.key(3), num_samples=200, num_chains=2
    )
    assert two["posterior"]["mu"].shape == (2, 100)
    assert two["log_likelihood"]["obs"].shape == (2, 100, N_OBS)
    with pytest.raises(ValueError, match="multiple"):
        svi_to_arviz(model, guide, params, data, key=jax.random.key(3), num_samples=5, num_chains=2)


def test_arviz_missing_raises_import_error(monkeypatch, fit, data):
    monkeypatch.setitem(sys.modules, "arviz", None)
    monkeypatch.setitem(sys.modules, "arviz_base", None)
    guide, params = fit
    with pytest.raises(ImportError, match="pip install arviz"):
        svi_to_arviz(model, guide, params, data, key=jax.random.key(0))
    # k-hat needs ArviZ only where NumPyro has no PSIS fit (NumPyro < 0.22)
    if _backends._numpyro_psis_khat() is not None:
        res = psis_khat(model, guide, params, data, key=jax.random.key(0), num_samples=100)
        assert np.isfinite(res.khat)
        assert np.isfinite(diagnostics.pareto_khat(res.log_weights))
    monkeypatch.setattr(_backends, "_numpyro_psis_khat", lambda: None)
    with pytest.raises(ImportError, match=r"numpyro-relax\[examples\]"):
        psis_khat(model, guide, params, data, key=jax.random.key(0))
    with pytest.raises(ImportError, match="pip install arviz"):
        diagnostics.pareto_khat(np.zeros(100))


def mu_guide(y):
    loc = numpyro.param("loc", jnp.asarray(0.0))
    scale = numpyro.param("scale", jnp.asarray(1.0), constraint=dist.constraints.positive)
    numpyro.sample("mu", dist.Normal(loc, scale))


MU_PARAMS = {"loc": jnp.asarray(2.0), "scale": jnp.asarray(0.2)}


def dropout_model(y):
    """``mu`` is dropped (replaced by 0) with probability 1/2, the mask drawn from
    ``numpyro.prng_key()`` as flax dropout does."""
    mu = numpyro.sample("mu", dist.Normal(0.0, PRIOR_SCALE))
    keep = jax.random.bernoulli(numpyro.prng_key(), 0.5)
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("obs", dist.Normal(jnp.where(keep, mu, 0.0), 1.0), obs=y)


def test_arviz_seeds_models_that_call_prng_key(data):
    n = 200
    idata = svi_to_arviz(
        dropout_model, mu_guide, MU_PARAMS, data, key=jax.random.key(10), num_samples=n
    )
    mu = idata["posterior"]["mu"].values[0]
    loglik = idata["log_likelihood"]["obs"].values[0]
    y = np.asarray(data)
    kept = -0.5 * (y[None] - mu[:, None]) ** 2 - 0.5 * np.log(2 * np.pi)
    dropped = np.broadcast_to(-0.5 * y**2 - 0.5 * np.log(2 * np.pi), kept.shape)
    is_kept = np.all(np.isclose(loglik, kept, atol=1e-5), axis=1)
    is_dropped = np.all(np.isclose(loglik, dropped, atol=1e-5), axis=1)
    assert np.all(is_kept ^ is_dropped)  # every row is one of the two, never a mixture
    # each draw has its own key: the number kept is Binomial(n, 1/2), within 5 sd
    assert abs(is_kept.sum() - n / 2) < 5 * np.sqrt(n / 4)
    assert idata["posterior_predictive"]["obs"].shape == (1, n, N_OBS)


def test_arviz_model_without_latent_sites(data):
    """Only parameters (e.g. a network fitted by SVI with an empty guide): every group still
    has num_samples draws."""

    def param_model(y):
        mu = numpyro.param("mu", jnp.asarray(0.0))
        with numpyro.plate("n", y.shape[0]):
            numpyro.sample("obs", dist.Normal(mu, 1.0), obs=y)

    params = {"mu": jnp.asarray(1.5)}
    idata = svi_to_arviz(
        param_model, lambda y: None, params, data, key=jax.random.key(17), num_samples=30
    )
    assert "posterior" not in _groups(idata)
    expected = -0.5 * (np.asarray(data) - 1.5) ** 2 - 0.5 * np.log(2 * np.pi)
    loglik = idata["log_likelihood"]["obs"].values
    assert loglik.shape == (1, 30, N_OBS)
    np.testing.assert_allclose(loglik, np.broadcast_to(expected, loglik.shape), rtol=1e-5)
    assert idata["posterior_predictive"]["obs"].shape == (1, 30, N_OBS)


def subsampled_model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, PRIOR_SCALE))
    with numpyro.plate("n", y.shape[0], subsample_size=5) as idx:
        numpyro.sample("obs", dist.Normal(mu, 1.0), obs=y[idx])


def test_arviz_refuses_subsampled_plates(data):
    with pytest.raises(ValueError, match="plate 'n' subsamples 5 of its 20"):
        svi_to_arviz(subsampled_model, mu_guide, MU_PARAMS, data, key=jax.random.key(11))


def multinomial_model(counts):
    """ProdLDA's likelihood: a Multinomial whose total count varies by document."""
    probs = numpyro.sample("probs", dist.Dirichlet(jnp.ones(counts.shape[-1])))
    with numpyro.plate("docs", counts.shape[0]):
        numpyro.sample("obs", dist.Multinomial(counts.sum(-1), probs), obs=counts)


def dirichlet_guide(counts):
    conc = numpyro.param("conc", jnp.ones(counts.shape[-1]), constraint=dist.constraints.positive)
    numpyro.sample("probs", dist.Dirichlet(conc))


def test_arviz_without_posterior_predictive():
    scipy_stats = pytest.importorskip("scipy.stats")
    counts = jnp.array([[3, 0, 2], [1, 4, 4], [0, 1, 0], [2, 2, 2]])
    params = {"conc": jnp.array([6.0, 7.0, 8.0])}
    args = (multinomial_model, dirichlet_guide, params, counts)
    # NumPyro cannot sample this likelihood under vmap, so the default fails ...
    with pytest.raises(ValueError, match="total_count_max"):
        svi_to_arviz(*args, key=jax.random.key(12), num_samples=50)
    # ... and posterior_predictive=False skips that group only
    idata = svi_to_arviz(*args, key=jax.random.key(12), num_samples=50, posterior_predictive=False)
    assert {"posterior", "log_likelihood", "observed_data"} <= _groups(idata)
    assert "posterior_predictive" not in _groups(idata)
    probs = idata["posterior"]["probs"].values[0]
    assert probs.shape == (50, 3)
    c = np.asarray(counts)
    expected = np.array(
        [[scipy_stats.multinomial.logpmf(row, row.sum(), p) for row in c] for p in probs]
    )
    np.testing.assert_allclose(idata["log_likelihood"]["obs"].values[0], expected, rtol=1e-5)
    np.testing.assert_array_equal(idata["observed_data"]["obs"].values, c)


def test_arviz_flax_module_with_mutable_state_and_dropout():
    """A flax module with BatchNorm (mutable state) and dropout (numpyro.prng_key()), run in
    evaluation mode: the log likelihood uses the fitted running statistics."""
    nn = pytest.importorskip("flax.linen")
    from numpyro.contrib.module import flax_module

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x, train):
            h = nn.BatchNorm(use_running_average=not train)(nn.Dense(4)(x))
            h = nn.Dropout(0.5, deterministic=not train)(h)
            return nn.Dense(1)(h)[..., 0]

    def net_model(x, y, train=True):
        net = flax_module("net", Net(), x, False, mutable=["batch_stats"], apply_rng=["dropout"])
        s = numpyro.sample("s", dist.LogNormal(0.0, 1.0))
        loc = net(x, train, rngs={"dropout": numpyro.prng_key()})
        with numpyro.plate("n", x.shape[0]):
            numpyro.sample("y", dist.Normal(loc, s), obs=y)

    x = jax.random.normal(jax.random.key(13), (30, 3))
    y = x[:, 0] + 3.0
    guide = AutoNormal(net_model)
    svi = SVI(net_model, guide, numpyro.optim.Adam(0.05), Trace_ELBO())
    result = svi.run(jax.random.key(14), 30, x, y, progress_bar=False)
    state = result.state.mutable_state
    with pytest.raises(ValueError, match="mutable_state"):
        svi_to_arviz(net_model, guide, result.params, x, y, train=False, key=jax.random.key(15))
    params = {**result.params, **state}
    idata = svi_to_arviz(
        net_model, guide, params, x, y, train=False, key=jax.random.key(15), num_samples=40
    )
    variables = {"params": params["net$params"], **state["net$state"]}
    loc = np.asarray(Net().apply(variables, x, False))
    s = idata["posterior"]["s"].values[0]
    expected = np.asarray(dist.Normal(loc[None], s[:, None]).log_prob(y[None]))
    np.testing.assert_allclose(
        idata["log_likelihood"]["y"].values[0], expected, rtol=1e-4, atol=1e-5
    )


# --------------------------------------------------------------------------------------------
# psis_khat
# --------------------------------------------------------------------------------------------


def test_khat_good_guide(fit, data):
    guide, params = fit
    res = psis_khat(model, guide, params, data, key=jax.random.key(4), num_samples=2000)
    khat, lw = res
    assert np.isfinite(khat) and khat < 0.7
    assert lw.shape == (2000,) and np.all(np.isfinite(lw))


def test_khat_log_weights_are_exact(data, exact_posterior):
    # With q = the exact posterior, log p(x, z) - log q(z) = log p(x) for every draw.
    mean, sd = exact_posterior
    guide = AutoNormal(model)
    params = {"mu_auto_loc": jnp.asarray(mean), "mu_auto_scale": jnp.asarray(sd)}
    _, lw = psis_khat(model, guide, params, data, key=jax.random.key(5), num_samples=500)
    y = np.asarray(data, dtype=np.float64)
    cov = np.eye(N_OBS) + PRIOR_SCALE**2
    _, logdet = np.linalg.slogdet(2 * np.pi * cov)
    log_evidence = -0.5 * (logdet + y @ np.linalg.solve(cov, y))
    np.testing.assert_allclose(lw, log_evidence, rtol=0, atol=1e-3)


def test_khat_too_narrow_guide(data, exact_posterior):
    # q = N(mean, (c sd)^2) with c = 0.05: the weights are exp(a eps^2), Pareto with
    # k = 1 - c^2 ~ 1 (Yao et al. 2018); PSIS must flag it. The chi-square tail reaches its
    # Pareto shape slowly, so one fit of 2,000 draws scatters (mean ~0.86, sd ~0.13 over keys:
    # 1 key in 8 falls below 0.7); the mean of 16 such fits has sd ~0.035.
    mean, sd = exact_posterior
    guide = AutoNormal(model)
    params = {"mu_auto_loc": jnp.asarray(mean), "mu_auto_scale": jnp.asarray(0.05 * sd)}
    khat, lw = psis_khat(model, guide, params, data, key=jax.random.key(6), num_samples=32000)
    assert np.isfinite(khat)
    assert np.mean(diagnostics.pareto_khat(lw.reshape(16, 2000))) > 0.7


def test_psis_khat_is_numpyros_psis_diagnostic(data, exact_posterior):
    """Same key, same draws, same Pareto fit as ``numpyro.infer.psis_diagnostic``. (A guide
    half as wide as the posterior, k = 0.75: other draws would move k-hat by ~0.1.)"""
    importance = pytest.importorskip("numpyro.infer.importance")  # NumPyro >= 0.22
    mean, sd = exact_posterior
    params = {"loc": jnp.asarray(mean), "scale": jnp.asarray(0.5 * sd)}
    key = jax.random.key(16)
    khat, _ = psis_khat(model, mu_guide, params, data, key=key, num_samples=1000)
    expected = importance.psis_diagnostic(key, params, model, mu_guide, data, num_particles=1000)
    assert khat == pytest.approx(expected, rel=1e-4)


def test_numpyro_and_arviz_fits_agree():
    """The fallback (ArviZ) and NumPyro's fit give the same k-hat on the same weights."""
    if _backends._numpyro_psis_khat() is None:
        pytest.skip("NumPyro < 0.22 has no PSIS fit to compare with")
    rng = np.random.default_rng(2)
    for lw in (rng.standard_t(df=2, size=1000), rng.normal(size=3000)):
        assert _backends._khat(lw) == pytest.approx(_backends._psislw(lw)[1], rel=1e-6)


def _log_weight_psis():
    """PSIS of log weights by the installed ArviZ: ``az.psislw`` (0.x), or arviz_stats 1.x's
    ``psislw``, which smooths the negation of its input (a log likelihood, as in PSIS-LOO)."""
    if _backends._arviz_major() < 1:
        return lambda lw: az.psislw(lw, reff=1.0)
    from arviz_stats.base import array_stats

    return lambda lw: array_stats.psislw(-lw, r_eff=1.0, axis=-1)


def test_psislw_sign_calibration_for_arviz_1(monkeypatch):
    """The ArviZ 1.x branch works whichever sign convention arviz_stats uses."""
    psis = _log_weight_psis()
    rng = np.random.default_rng(0)
    lw = rng.standard_t(df=2, size=1000)  # heavy right tail
    ref_smoothed, ref_k = psis(lw)
    smoothed, k = _backends._psislw(lw)  # the installed ArviZ, unpatched
    np.testing.assert_allclose(smoothed, ref_smoothed)
    assert k == pytest.approx(float(ref_k))

    for negates in (False, True):

        def fake_psislw(ary, r_eff=1.0, axis=-1, negates=negates):
            ary = -np.asarray(ary) if negates else np.asarray(ary)
            return psis(ary)

        base = types.ModuleType("arviz_stats.base")
        base.array_stats = types.SimpleNamespace(psislw=fake_psislw)
        monkeypatch.setitem(sys.modules, "arviz_stats", types.ModuleType("arviz_stats"))
        monkeypatch.setitem(sys.modules, "arviz_stats.base", base)
        monkeypatch.setattr(_backends, "_arviz_major", lambda: 1)
        smoothed, k = _backends._psislw(lw)
        np.testing.assert_allclose(smoothed, ref_smoothed)
        assert k == pytest.approx(float(ref_k))


@pytest.mark.parametrize(
    "lw",
    [
        # the 100 largest log weights are equal: no Pareto tail to fit
        np.concatenate([-np.linspace(1e-3, 1.0, 400), np.zeros(100)]),
        # 20 draws give fewer than 5 tail draws
        np.random.default_rng(1).normal(size=20),
    ],
    ids=["flat-tail", "few-draws"],
)
def test_psislw_without_a_tail_gives_inf(lw):
    """Where no tail can be fitted, k-hat is inf and the weights are only normalised (ArviZ
    0.x does this itself; arviz_stats 1.x raises, and diagnostics catches it)."""
    smoothed, k = _backends._psislw(lw)
    assert k == np.inf
    shifted = lw - lw.max()
    np.testing.assert_allclose(smoothed, shifted - np.log(np.sum(np.exp(shifted))), rtol=1e-12)


def test_pareto_khat_recovers_known_tail_shapes():
    """Weights w with P(w > t) = t^(-a) have a Pareto tail of shape k = 1/a: log w = E / a with
    E ~ Exponential(1). With 20,000 draws PSIS fits ~420 tail draws, so k-hat has a standard
    error of about (1 + k) / sqrt(420) < 0.09; the tolerance is 0.25."""
    shapes = np.array([0.25, 0.5, 0.8])
    e = np.random.default_rng(0).exponential(size=(2, 3, 20000))
    khat = diagnostics.pareto_khat(e * shapes[:, None])
    assert khat.shape == (2, 3)
    np.testing.assert_allclose(khat, np.broadcast_to(shapes, (2, 3)), atol=0.25)
    assert np.all(np.diff(khat, axis=-1) > 0)


def test_pareto_khat_rejects_bad_log_weights():
    with pytest.raises(ValueError, match="log_weights"):
        diagnostics.pareto_khat(1.0)
    with pytest.raises(ValueError, match="not finite"):
        diagnostics.pareto_khat(np.array([0.0, np.nan, 1.0]))


def test_from_dict_dispatch_for_arviz_1(monkeypatch):
    calls = {}

    def fake_from_dict(data, *, coords=None, dims=None):
        calls.update(data=data, coords=coords, dims=dims)
        return "tree"

    fake = types.ModuleType("arviz_base")
    fake.from_dict = fake_from_dict
    monkeypatch.setitem(sys.modules, "arviz_base", fake)
    monkeypatch.setattr(_backends, "_arviz_major", lambda: 1)
    groups = {"posterior": {"a": np.zeros((1, 3))}}
    assert _backends._from_dict(groups, coords={"c": [0]}, dims={"a": []}) == "tree"
    assert calls == {"data": groups, "coords": {"c": [0]}, "dims": {"a": []}}


# --------------------------------------------------------------------------------------------
# vertex_distance
# --------------------------------------------------------------------------------------------


def test_vertex_distance_simplex():
    x = jnp.array([[1.0, 0.0, 0.0], [0.5, 0.3, 0.2], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.995, 0.005]])
    res = vertex_distance(x, eps=0.01)
    np.testing.assert_allclose(res.distances, [0.0, 0.5, 2 / 3, 0.005], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.mean, (0.5 + 2 / 3 + 0.005) / 4, rtol=1e-5)
    np.testing.assert_allclose(res.max, 2 / 3, rtol=1e-6)
    assert float(res.fraction_near_vertex) == 0.5
    # batch dims are kept, the event axis is reduced
    assert vertex_distance(jnp.ones((2, 5, 4)) / 4).distances.shape == (2, 5)


def test_vertex_distance_k_hot_and_unit_interval():
    x = jnp.array([[0.9, 0.8, 0.3], [1.0, 0.0, 1.0]])
    res = vertex_distance(x, k=2)
    np.testing.assert_allclose(res.distances, [0.15, 0.0], atol=1e-6)
    b = jnp.array([0.0, 0.2, 0.7, 1.0, 0.995])
    res = vertex_distance(b, support="unit_interval", eps=0.01)
    np.testing.assert_allclose(res.distances, [0.0, 0.2, 0.3, 0.0, 0.005], atol=1e-6)
    assert float(res.fraction_near_vertex) == pytest.approx(0.6)
    # a binary sample x is the two-category simplex sample (x, 1 - x)
    two = jnp.stack([b, 1 - b], axis=-1)
    np.testing.assert_allclose(vertex_distance(two).distances, res.distances, atol=1e-6)
    with pytest.raises(ValueError, match="k must"):
        vertex_distance(x, k=4)
    with pytest.raises(ValueError, match="support"):
        vertex_distance(x, support="cube")


def test_vertex_distance_jit_and_temperature():
    f = jax.jit(vertex_distance, static_argnames=("support", "k", "eps"))
    logits = jnp.array([0.5, -0.3, 1.2, 0.0])
    means = []
    for t in (5.0, 1.0, 0.1):
        x = dist.RelaxedBernoulliLogits(t, logits).sample(jax.random.key(0), (500,))
        means.append(float(f(x, support="unit_interval").mean))
    # lower temperature, closer to the vertices
    assert means[0] > means[1] > means[2]


# --------------------------------------------------------------------------------------------
# elbo_grad_variance
# --------------------------------------------------------------------------------------------


def test_grad_variance_zero_for_deterministic_elbo(data):
    guide = AutoDelta(model)
    params = {"mu_auto_loc": jnp.asarray(1.0)}
    res = elbo_grad_variance(
        Trace_ELBO(), model, guide, params, data, key=jax.random.key(7), num_keys=20
    )
    assert float(res.total) == 0.0
    assert float(res.variance["mu_auto_loc"]) == 0.0
    # d(-log p(y, mu))/d mu at mu = 1
    expected = 1.0 / PRIOR_SCALE**2 + float(jnp.sum(1.0 - data))
    np.testing.assert_allclose(res.mean["mu_auto_loc"], expected, rtol=1e-5)
    assert res.grads["mu_auto_loc"].shape == (20,)


def _scale_jacobian(guide: AutoNormal, s: float) -> float:
    """d scale / d unconstrained scale for AutoNormal's scale constraint (softplus_positive)."""
    t = biject_to(guide.scale_constraint)
    return float(jax.grad(t)(t.inv(jnp.asarray(s))))


def test_grad_variance_positive_and_unbiased(data, exact_posterior):
    mean, sd = exact_posterior
    m, s = mean + 0.3, 2 * sd
    guide = AutoNormal(model)
    params = {"mu_auto_loc": jnp.asarray(m), "mu_auto_scale": jnp.asarray(s)}
    n = 2000
    res = elbo_grad_variance(
        Trace_ELBO(), model, guide, params, data, key=jax.random.key(8), num_keys=n
    )
    var = res.variance
    assert float(var["mu_auto_loc"]) > 0 and float(var["mu_auto_scale"]) > 0
    np.testing.assert_allclose(res.total, var["mu_auto_loc"] + var["mu_auto_scale"], rtol=1e-6)
    # closed-form gradient of the negative ELBO of the conjugate model,
    # prec/2 ((m - mean)^2 + s^2) - log s + const, with respect to loc and (as SVI sees it)
    # to the unconstrained scale; the mean over keys must match within its standard error
    prec = 1.0 / sd**2
    exact = {
        "mu_auto_loc": (m - mean) * prec,
        "mu_auto_scale": (s * prec - 1.0 / s) * _scale_jacobian(guide, s),
    }
    for name, g in exact.items():
        se = np.sqrt(float(var[name]) / n)
        assert abs(float(res.mean[name]) - g) < 5 * se


def test_grad_variance_constrained_vs_unconstrained(fit, data):
    guide, params = fit
    kw = dict(key=jax.random.key(9), num_keys=50)
    u = elbo_grad_variance(Trace_ELBO(), model, guide, params, data, **kw)
    c = elbo_grad_variance(Trace_ELBO(), model, guide, params, data, unconstrained=False, **kw)
    # chain rule: d/du = (d scale/du) d/dscale, the same factor for every key
    jac = _scale_jacobian(guide, float(params["mu_auto_scale"]))
    np.testing.assert_allclose(u.grads["mu_auto_scale"], jac * c.grads["mu_auto_scale"], rtol=1e-4)
    np.testing.assert_allclose(
        u.variance["mu_auto_scale"], jac**2 * c.variance["mu_auto_scale"], rtol=1e-4
    )
    np.testing.assert_allclose(u.variance["mu_auto_loc"], c.variance["mu_auto_loc"], rtol=1e-5)
    with pytest.raises(ValueError, match="num_keys"):
        elbo_grad_variance(Trace_ELBO(), model, guide, params, data, key=kw["key"], num_keys=1)
