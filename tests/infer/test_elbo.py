"""Score-function ELBOs (TraceLOO_ELBO, VarGrad_ELBO) and DisARM_ELBO against exact ELBOs,
TraceGraph_ELBO and Trace_ELBO.

Exact ELBOs and gradients are closed forms in float64 NumPy (enumeration over the discrete
latent, Gaussian expectations in closed form). Monte Carlo means are compared with a tolerance of
``Z`` standard errors estimated from ``M`` independent loss evaluations (fixed keys).
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro.infer import SVI, Trace_ELBO, TraceGraph_ELBO
from scipy import special

from numpyro_relax.infer import DisARM_ELBO, TraceLOO_ELBO, VarGrad_ELBO

Z = 5.0
M = 4096
NUM_PARTICLES = 4

# ------------------------------------------------------------------------------------------------
# model A: a categorical latent (score function) and a Gaussian latent (pathwise)
# ------------------------------------------------------------------------------------------------

PRIOR = np.array([0.5, 0.3, 0.2])
MU = np.array([-1.5, 0.5, 2.0])
X_A = 1.2
PARAMS_A = {"lg": jnp.array([0.2, -0.3, 0.1]), "loc": jnp.array(0.3)}


def model_a(x):
    z = numpyro.sample("z", dist.Categorical(probs=PRIOR))
    y = numpyro.sample("y", dist.Normal(0.0, 1.0))
    numpyro.sample("x", dist.Normal(jnp.asarray(MU)[z] + y, 1.0), obs=x)


def guide_a(x):
    lg = numpyro.param("lg", PARAMS_A["lg"])
    loc = numpyro.param("loc", PARAMS_A["loc"])
    numpyro.sample("z", dist.Categorical(logits=lg))
    numpyro.sample("y", dist.Normal(loc, 1.0))


def exact_a(lg, loc):
    """ELBO and its gradient: sum_k q_k (E_y log N(x; mu_k + y, 1) + log pi_k - log q_k) - KL_y."""
    lg, loc = np.asarray(lg, np.float64), float(loc)
    log_q = lg - special.logsumexp(lg)
    q = np.exp(log_q)
    ll = -0.5 * np.log(2 * np.pi) - 0.5 * ((X_A - MU - loc) ** 2 + 1.0)
    c = ll + np.log(PRIOR) - log_q
    value = q @ c - 0.5 * loc**2
    grad_lg = q * (c - q @ c)
    grad_loc = q @ (X_A - MU - loc) - loc
    return value, {"lg": grad_lg, "loc": grad_loc}


# ------------------------------------------------------------------------------------------------
# model B: local Bernoulli latents in a plate, scaled (as with subsampling)
# ------------------------------------------------------------------------------------------------

SCALE = 3.0
X_B = np.array([1.0, -0.5, 2.0])
PARAMS_B = {"lg": jnp.array([0.5, -0.3, 0.1])}


def model_b(x):
    with numpyro.plate("n", 3), numpyro.handlers.scale(scale=SCALE):
        z = numpyro.sample("z", dist.Bernoulli(0.4))
        numpyro.sample("x", dist.Normal(3.0 * z - 1.5, 1.0), obs=x)


def guide_b(x):
    lg = numpyro.param("lg", PARAMS_B["lg"])
    with numpyro.plate("n", 3), numpyro.handlers.scale(scale=SCALE):
        numpyro.sample("z", dist.Bernoulli(logits=lg))


def exact_b(lg):
    lg = np.asarray(lg, np.float64)
    q = special.expit(lg)

    def cost(z):
        log_lik = -0.5 * np.log(2 * np.pi) - 0.5 * (X_B - (3.0 * z - 1.5)) ** 2
        log_prior = np.log(0.4) if z else np.log(0.6)
        log_q = np.log(q) if z else np.log1p(-q)
        return log_lik + log_prior - log_q

    value = SCALE * np.sum(q * cost(1) + (1 - q) * cost(0))
    return value, {"lg": SCALE * q * (1 - q) * (cost(1) - cost(0))}


# ------------------------------------------------------------------------------------------------


def loss_and_grads(elbo, model, guide, x, params, m=M, seed=0):
    """``m`` independent (loss, grad) evaluations, one jit, vmapped over keys."""

    def one(key):
        return jax.value_and_grad(lambda p: elbo.loss(key, p, model, guide, x))(params)

    keys = jax.random.split(jax.random.PRNGKey(seed), m)
    losses, grads = jax.jit(jax.vmap(one))(keys)
    return np.asarray(losses, np.float64), {k: np.asarray(v, np.float64) for k, v in grads.items()}


_CACHE = {}


def run_a(name):
    if name not in _CACHE:
        elbo = {
            "loo": TraceLOO_ELBO(NUM_PARTICLES),
            "vargrad": VarGrad_ELBO(NUM_PARTICLES),
            "tracegraph": TraceGraph_ELBO(NUM_PARTICLES),
        }[name]
        _CACHE[name] = loss_and_grads(elbo, model_a, guide_a, X_A, PARAMS_A)
    return _CACHE[name]


def assert_mean_close(samples, expected, z=Z):
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(samples.shape[0])
    err = np.abs(mean - np.asarray(expected))
    assert np.all(err <= z * se), f"mean {mean} vs exact {expected}: {err / se} standard errors"


def sq_err(g, exact):
    return np.sum((g - exact) ** 2, axis=tuple(range(1, g.ndim)))


@pytest.mark.parametrize("name", ["loo", "vargrad", "tracegraph"])
def test_model_a_unbiased_and_loss_is_the_elbo(name):
    losses, grads = run_a(name)
    value, exact_grad = exact_a(PARAMS_A["lg"], PARAMS_A["loc"])
    # the loss minimises -ELBO: its gradient estimates -grad ELBO, its mean is -ELBO
    assert_mean_close(-grads["lg"], exact_grad["lg"])
    assert_mean_close(-grads["loc"], exact_grad["loc"])
    assert_mean_close(-losses, value)


@pytest.mark.parametrize("name", ["loo", "vargrad"])
def test_model_a_against_tracegraph(name):
    """Same particles as TraceGraph_ELBO: same loss value, same pathwise gradient, the same mean
    score-function gradient (paired difference within SE) and a lower variance."""
    losses, grads = run_a(name)
    losses_tg, grads_tg = run_a("tracegraph")
    np.testing.assert_allclose(losses, losses_tg, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["loc"], grads_tg["loc"], rtol=1e-4, atol=1e-5)
    assert_mean_close(grads["lg"] - grads_tg["lg"], np.zeros(3))
    exact_lg = -exact_a(PARAMS_A["lg"], PARAMS_A["loc"])[1]["lg"]
    d = sq_err(grads_tg["lg"], exact_lg) - sq_err(grads["lg"], exact_lg)
    assert d.mean() > Z * d.std(ddof=1) / np.sqrt(M)


def test_loss_value_equals_trace_elbo_and_lax_map_matches_vmap():
    """The surrogate's value is NumPyro's Trace_ELBO estimate on the same particles, and
    ``vectorize_particles=False`` (``jax.lax.map``) gives the same surrogate as ``vmap``."""
    key = jax.random.PRNGKey(11)
    elbos = {
        "trace": Trace_ELBO(NUM_PARTICLES),
        "loo": TraceLOO_ELBO(NUM_PARTICLES),
        "vargrad": VarGrad_ELBO(NUM_PARTICLES),
        "loo_map": TraceLOO_ELBO(NUM_PARTICLES, vectorize_particles=False),
        "vargrad_map": VarGrad_ELBO(NUM_PARTICLES, vectorize_particles=False),
    }

    @jax.jit
    def all_losses(params):
        return {
            name: jax.value_and_grad(lambda p, e=e: e.loss(key, p, model_a, guide_a, X_A))(params)
            for name, e in elbos.items()
        }

    out = all_losses(PARAMS_A)
    expected = out["trace"][0]
    for name in ("loo", "vargrad", "loo_map", "vargrad_map"):
        np.testing.assert_allclose(out[name][0], expected, rtol=1e-6)
    for name in ("loo", "vargrad"):
        for k, g in out[name][1].items():
            np.testing.assert_allclose(out[name + "_map"][1][k], g, rtol=1e-4, atol=1e-6)


def test_model_b_scaled_plate_unbiased_and_rao_blackwellised():
    """Local latents with a scale: both unbiased; the Rao-Blackwellised LOO costs (each z_n sees
    only its own terms) beat VarGrad's whole-particle cost."""
    value, exact_grad = exact_b(PARAMS_B["lg"])
    losses_loo, grads_loo = loss_and_grads(
        TraceLOO_ELBO(NUM_PARTICLES), model_b, guide_b, X_B, PARAMS_B
    )
    losses_vg, grads_vg = loss_and_grads(
        VarGrad_ELBO(NUM_PARTICLES), model_b, guide_b, X_B, PARAMS_B
    )
    for losses, grads in [(losses_loo, grads_loo), (losses_vg, grads_vg)]:
        assert_mean_close(-grads["lg"], exact_grad["lg"])
        assert_mean_close(-losses, value)
    d = sq_err(grads_vg["lg"], -exact_grad["lg"]) - sq_err(grads_loo["lg"], -exact_grad["lg"])
    assert d.mean() > Z * d.std(ddof=1) / np.sqrt(M)


def test_svi_fits_model_a():
    """Integration: SVI with TraceLOO_ELBO closes 95% of the gap to the exact optimum (found by
    exact gradient ascent) in 600 Adam steps (it closes ~98%; TraceGraph_ELBO ~95%)."""
    svi = SVI(model_a, guide_a, optax.adam(0.05), loss=TraceLOO_ELBO(NUM_PARTICLES))
    result = svi.run(jax.random.PRNGKey(0), 600, X_A, progress_bar=False)
    assert np.all(np.isfinite(result.losses))

    lg, loc = np.asarray(PARAMS_A["lg"], np.float64), float(PARAMS_A["loc"])
    for _ in range(3000):  # exact gradient ascent
        _, g = exact_a(lg, loc)
        lg, loc = lg + 0.1 * g["lg"], loc + 0.1 * g["loc"]
    best = exact_a(lg, loc)[0]
    start = exact_a(PARAMS_A["lg"], PARAMS_A["loc"])[0]
    final = exact_a(result.params["lg"], result.params["loc"])[0]
    assert best - final < 0.05 * (best - start)


@pytest.mark.parametrize("cls", [TraceLOO_ELBO, VarGrad_ELBO])
@pytest.mark.parametrize("num_particles", [1, 0, 2.5])
def test_num_particles_validated(cls, num_particles):
    with pytest.raises(ValueError, match="num_particles"):
        cls(num_particles)


# ------------------------------------------------------------------------------------------------
# DisARM_ELBO
# ------------------------------------------------------------------------------------------------
# model C: two Bernoulli latents that interact in the likelihood (1.5 z1 - z2 + 2 z1 z2), a
# reparameterised Normal y whose guide depends on z1, and a scaled plate of local Bernoulli
# latents w_n. Variants: "sites" (z1 ~ BernoulliLogits, z2 ~ BernoulliProbs), "event" (z1, z2 as
# one site with to_event(1)), "mask" (as "sites", the last plate element masked in model and
# guide).

PRIOR_Z = np.array([0.3, 0.6])
PRIOR_W = 0.4
SCALE_C = 2.5
X_C = np.array([0.5, 2.0, -1.0])
MASK_C = np.array([True, True, False])
PARAMS_C = {
    "lz": jnp.array([0.3, -0.4]),
    "lw": jnp.array([0.2, -0.5, 0.4]),
    "loc": jnp.array(0.2),
    "cy": jnp.array(0.5),
}
VARIANTS = ("sites", "event", "mask")


def _mean_c(z1, z2, w, y):
    return 1.5 * z1 - z2 + 2.0 * z1 * z2 + 2.0 * w - 1.0 + y


def make_c(variant):
    mask = MASK_C if variant == "mask" else True

    def model(x):
        if variant == "event":
            z = numpyro.sample("z", dist.Bernoulli(probs=jnp.asarray(PRIOR_Z)).to_event(1))
            z1, z2 = z[0], z[1]
        else:
            z1 = numpyro.sample("z1", dist.Bernoulli(PRIOR_Z[0]))
            z2 = numpyro.sample("z2", dist.Bernoulli(PRIOR_Z[1]))
        y = numpyro.sample("y", dist.Normal(0.0, 1.0))
        with (
            numpyro.plate("n", 3),
            numpyro.handlers.scale(scale=SCALE_C),
            numpyro.handlers.mask(mask=mask),
        ):
            w = numpyro.sample("w", dist.Bernoulli(PRIOR_W))
            numpyro.sample("x", dist.Normal(_mean_c(z1, z2, w, y), 1.0), obs=x)

    def guide(x, bernoulli=dist.Bernoulli):
        lz = numpyro.param("lz", PARAMS_C["lz"])
        lw = numpyro.param("lw", PARAMS_C["lw"])
        loc = numpyro.param("loc", PARAMS_C["loc"])
        cy = numpyro.param("cy", PARAMS_C["cy"])
        if variant == "event":
            z1 = numpyro.sample("z", bernoulli(logits=lz).to_event(1))[0]
        else:
            z1 = numpyro.sample("z1", bernoulli(logits=lz[0]))
            if bernoulli is dist.Bernoulli:
                numpyro.sample("z2", bernoulli(probs=jax.nn.sigmoid(lz[1])))
            else:
                numpyro.sample("z2", bernoulli(logits=lz[1]))
        numpyro.sample("y", dist.Normal(loc + cy * z1, 1.0))
        with (
            numpyro.plate("n", 3),
            numpyro.handlers.scale(scale=SCALE_C),
            numpyro.handlers.mask(mask=mask),
        ):
            numpyro.sample("w", bernoulli(logits=lw))

    return model, guide


def exact_c(params, variant):
    """ELBO and gradient by enumerating (z1, z2, w1, w2, w3); y in closed form given z1.

    With F(b) the ELBO integrand (y integrated out: E log N(x; m + y, 1) and -KL_y = -mu^2 / 2 at
    mu = loc + cy z1), the gradient in a logit is sum_b q(b) (b_k - sigma_k) F(b) (the
    expected gradient of log q at fixed b is zero) and in loc, cy it is sum_b q(b) dF/d(.).
    """
    lz, lw = np.asarray(params["lz"], np.float64), np.asarray(params["lw"], np.float64)
    loc, cy = float(params["loc"]), float(params["cy"])
    mask = MASK_C if variant == "mask" else np.ones(3, bool)
    bits = np.array(np.meshgrid(*[[0.0, 1.0]] * 5, indexing="ij")).reshape(5, -1).T
    z1, z2, w = bits[:, 0], bits[:, 1], bits[:, 2:]
    logits = np.concatenate([lz, lw])
    log_q = np.sum(bits * logits - np.logaddexp(0.0, logits), axis=1)
    mu = loc + cy * z1
    resid = X_C - _mean_c(z1[:, None], z2[:, None], w, mu[:, None])
    log_lik = -0.5 * np.log(2 * np.pi) - 0.5 * (resid**2 + 1.0)
    log_pw = w * np.log(PRIOR_W) + (1 - w) * np.log1p(-PRIOR_W)
    log_qw = w * lw - np.logaddexp(0.0, lw)
    local = SCALE_C * np.sum(mask * (log_lik + log_pw - log_qw), axis=1)
    log_pz = bits[:, :2] @ np.log(PRIOR_Z) + (1 - bits[:, :2]) @ np.log1p(-PRIOR_Z)
    log_qz = np.sum(bits[:, :2] * lz - np.logaddexp(0.0, lz), axis=1)
    f = log_pz - log_qz - 0.5 * mu**2 + local
    q = np.exp(log_q)
    d_mu = -mu + SCALE_C * np.sum(mask * resid, axis=1)
    grad_logits = q @ ((bits - special.expit(logits)) * f[:, None])
    return q @ f, {
        "lz": grad_logits[:2],
        "lw": grad_logits[2:],
        "loc": q @ d_mu,
        "cy": q @ (z1 * d_mu),
    }


_CACHE_C = {}


def run_c(variant, num_pairs=1):
    if (variant, num_pairs) not in _CACHE_C:
        model, guide = make_c(variant)
        elbo = DisARM_ELBO(num_pairs)
        _CACHE_C[variant, num_pairs] = loss_and_grads(elbo, model, guide, X_C, PARAMS_C)
    return _CACHE_C[variant, num_pairs]


@pytest.mark.parametrize("variant", VARIANTS)
def test_disarm_unbiased_by_enumeration(variant):
    """DisARM logit gradients (Bernoulli sites, an event site, a scaled plate, a masked element)
    and pathwise gradients of a Normal site that depends on a Bernoulli are unbiased, and the
    loss is an unbiased estimate of -ELBO."""
    losses, grads = run_c(variant)
    value, exact_grad = exact_c(PARAMS_C, variant)
    if variant == "mask":  # the masked element gets no gradient; its exact one is zero
        np.testing.assert_allclose(exact_grad["lw"][2], 0.0, atol=1e-12)
        assert np.all(grads["lw"][:, 2] == 0.0)
        grads["lw"], exact_grad["lw"] = grads["lw"][:, :2], exact_grad["lw"][:2]
    for name in PARAMS_C:
        assert_mean_close(-grads[name], exact_grad[name])
    assert_mean_close(-losses, value)


def test_disarm_more_pairs_is_unbiased_with_lower_variance():
    losses, grads = run_c("sites", num_pairs=3)
    _, exact_grad = exact_c(PARAMS_C, "sites")
    for name in PARAMS_C:
        assert_mean_close(-grads[name], exact_grad[name])
    _, grads_1 = run_c("sites")
    for name in ("lz", "lw"):  # 3 pairs: a third of the variance of 1, well within 2x
        assert np.all(grads[name].var(0) < 0.6 * grads_1[name].var(0))


def test_disarm_loss_value_is_the_mean_elbo_of_the_antithetic_runs():
    """Run 1 of each pair draws the Bernoulli sites exactly as Trace_ELBO does with the same key
    (b = 1[u < sigmoid(theta)] from the site's key), run 2 draws 1[1 - u < sigmoid(theta)] =
    1 - Bernoulli(-theta) from the same u, and every other site (here the Normal's noise) is the
    same in both runs. So the loss is the mean of Trace_ELBO with the guide and with a guide of
    reflected Bernoullis, and so is the pathwise gradient of loc and cy."""

    class ReflectedBernoulli(dist.BernoulliLogits):
        def sample(self, key, sample_shape=()):
            return 1 - dist.BernoulliLogits(-self.logits).sample(key, sample_shape)

    model, guide = make_c("sites")

    def guide_reflected(x):
        guide(x, bernoulli=ReflectedBernoulli)

    def loss_fn(elbo, g):
        return jax.value_and_grad(lambda p: elbo.loss(jax.random.PRNGKey(3), p, model, g, X_C))

    for num_pairs in (1, 3):
        loss, grads = jax.jit(loss_fn(DisARM_ELBO(num_pairs), guide))(PARAMS_C)
        loss_1, grads_1 = loss_fn(Trace_ELBO(num_pairs), guide)(PARAMS_C)
        loss_2, grads_2 = loss_fn(Trace_ELBO(num_pairs), guide_reflected)(PARAMS_C)
        np.testing.assert_allclose(loss, 0.5 * (loss_1 + loss_2), rtol=1e-5)
        assert not np.isclose(loss_1, loss_2)  # the two runs differ
        for name in ("loc", "cy"):
            np.testing.assert_allclose(
                grads[name], 0.5 * (grads_1[name] + grads_2[name]), rtol=1e-4, atol=1e-5
            )


def test_disarm_lax_map_matches_vmap():
    model, guide = make_c("sites")
    key = jax.random.PRNGKey(5)

    def run(elbo):
        return jax.jit(jax.value_and_grad(lambda p: elbo.loss(key, p, model, guide, X_C)))(PARAMS_C)

    loss, grads = run(DisARM_ELBO(3))
    loss_map, grads_map = run(DisARM_ELBO(3, vectorize_particles=False))
    np.testing.assert_allclose(loss_map, loss, rtol=1e-6)
    for name, g in grads.items():
        np.testing.assert_allclose(grads_map[name], g, rtol=1e-4, atol=1e-6)


def test_disarm_variance_one_bit_far_below_loo():
    """f(b) = (b - 0.499)^2 at logit 0 (prior = guide, so log p - log q = 0): the antithetic bit
    is always 1 - b and every DisARM estimate is the exact gradient (f(1) - f(0)) / 4, while
    TraceLOO with the same two evaluations gives (f(1) - f(0)) / 2 or 0, variance
    (f(1) - f(0))^2 / 16."""

    def model():
        z = numpyro.sample("z", dist.Bernoulli(0.5))
        numpyro.factor("f", (z - 0.499) ** 2)

    def guide():
        numpyro.sample("z", dist.Bernoulli(logits=numpyro.param("theta", jnp.array(0.0))))

    params = {"theta": jnp.array(0.0)}
    delta = 0.501**2 - 0.499**2
    exact = delta / 4

    def grads(elbo):
        def one(key):
            return jax.grad(lambda p: elbo.loss(key, p, model, guide))(params)["theta"]

        keys = jax.random.split(jax.random.PRNGKey(0), M)
        return -np.asarray(jax.jit(jax.vmap(one))(keys), np.float64)

    g_disarm, g_loo = grads(DisARM_ELBO(1)), grads(TraceLOO_ELBO(2))
    np.testing.assert_allclose(g_disarm, exact, rtol=1e-3)
    assert_mean_close(g_loo, exact)
    var_loo = g_loo.var(ddof=1)
    # the sample variance of a two-point law with probability 1/2: relative s.e. ~ 1/sqrt(M)
    np.testing.assert_allclose(var_loo, delta**2 / 16, rtol=Z / np.sqrt(M))
    assert g_disarm.var(ddof=1) < 1e-6 * var_loo


def test_svi_with_disarm_fits_model_b():
    """Integration: SVI with DisARM_ELBO on the scaled plate of model B reaches the exact
    posterior, q(z_n = 1) = p(z_n = 1 | x_n) (logits log(0.4 / 0.6) + 3 x_n), within 0.01 in
    probability, and closes 99% of the ELBO gap, in 1000 Adam steps with one pair."""
    svi = SVI(model_b, guide_b, optax.adam(0.05), loss=DisARM_ELBO(1))
    result = svi.run(jax.random.PRNGKey(0), 1000, X_B, progress_bar=False)
    assert np.all(np.isfinite(result.losses))
    best_logits = np.log(0.4 / 0.6) + 3.0 * X_B
    np.testing.assert_allclose(
        special.expit(np.asarray(result.params["lg"], np.float64)),
        special.expit(best_logits),
        atol=0.01,
    )
    best, start = exact_b(best_logits)[0], exact_b(PARAMS_B["lg"])[0]
    assert best - exact_b(result.params["lg"])[0] < 0.01 * (best - start)


def test_disarm_rejects_a_non_bernoulli_site():
    with pytest.raises(ValueError, match=r"'z'.*not Bernoulli.*TraceLOO_ELBO"):
        DisARM_ELBO().loss(jax.random.PRNGKey(0), PARAMS_A, model_a, guide_a, X_A)


@pytest.mark.parametrize("through_normal", [False, True])
def test_disarm_rejects_dependent_bernoulli_sites(through_normal):
    """z2's logits depend on z1 (directly, or through a reparameterised y)."""

    def model():
        z1 = numpyro.sample("z1", dist.Bernoulli(0.5))
        y = numpyro.sample("y", dist.Normal(z1, 1.0))
        numpyro.sample("z2", dist.Bernoulli(logits=y))

    def guide():
        z1 = numpyro.sample("z1", dist.Bernoulli(logits=numpyro.param("a", jnp.array(0.0))))
        y = numpyro.sample("y", dist.Normal(z1, 1.0))
        numpyro.sample("z2", dist.Bernoulli(logits=y if through_normal else z1 - 0.5))

    with pytest.raises(ValueError, match=r"'z2' depend on .*'z1'"):
        DisARM_ELBO().loss(jax.random.PRNGKey(0), {"a": jnp.array(0.0)}, model, guide)


@pytest.mark.parametrize("num_pairs", [0, -1, 2.5, "2"])
def test_disarm_num_pairs_validated(num_pairs):
    with pytest.raises(ValueError, match="num_pairs"):
        DisARM_ELBO(num_pairs)
