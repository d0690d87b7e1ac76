"""Simplex family (IGR, LogisticNormal, LogisticNormalSoftmax): protocol and exact densities."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from conformance import Case, ConformanceSuite
from jax import random
from numpyro.infer.util import log_density
from scipy import stats

from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
)

TRIL = jnp.array(
    [
        [[0.9, 0.0, 0.0], [0.3, 0.7, 0.0], [-0.2, 0.1, 0.5]],
        [[1.2, 0.0, 0.0], [0.0, 0.4, 0.0], [0.5, -0.3, 0.8]],
    ]
)


def _logistic_normal_tril(loc, scale_tril, **kwargs):
    """``LogisticNormal`` of the lower triangle: finite differences perturb every entry."""
    return LogisticNormal(loc, jnp.tril(scale_tril), **kwargs)


class TestConformance(ConformanceSuite):
    cases = [
        Case(
            "igr",
            InvertibleGaussian,
            {
                "loc": jnp.array([[0.3, -1.0, 0.5], [1.0, 0.0, -0.5]]),
                "scale": jnp.array([[0.5, 1.0, 0.8], [1.2, 0.7, 0.4]]),
                "temperature": jnp.array([0.5, 1.5]),
                "delta": jnp.array([1.0, 2.5]),
            },
            invalid={
                "scale": jnp.array([-1.0, 1.0, 1.0]),
                "temperature": jnp.array([-1.0, 1.0]),
                "delta": jnp.array([0.0, 1.0]),
            },
            fd_sample=("loc", "scale", "temperature", "delta"),
            fd_log_prob=("loc", "scale", "temperature", "delta"),
        ),
        Case(
            "logistic-normal",
            _logistic_normal_tril,
            {"loc": jnp.array([[0.3, -1.0, 0.5], [1.0, 0.0, -0.5]]), "scale_tril": TRIL},
            invalid={"scale_tril": -TRIL},
            fd_sample=("loc", "scale_tril"),
            fd_log_prob=("loc", "scale_tril"),
        ),
        Case(
            "logistic-normal-softmax",
            LogisticNormalSoftmax,
            {
                "loc": jnp.array([[0.3, -1.0, 0.5, 0.0], [1.0, 0.0, -0.5, 2.0]]),
                "scale": jnp.array([[0.5, 1.0, 0.8, 0.3], [1.2, 0.7, 0.4, 1.0]]),
            },
            invalid={"scale": jnp.array([0.5, -1.0, 0.8, 0.3])},
            fd_sample=("loc", "scale"),
            fd_log_prob=("loc", "scale"),
        ),
    ]


# -- densities against independent computations -------------------------------------------------


@partial(jax.jit, static_argnums=2)
def _draw(d, key, n):
    """``n`` samples of ``d``, with log_prob from the intermediates and from the values alone."""
    x, inter = d.sample_with_intermediates(key, (n,))
    return x, d.log_prob(x, inter), d.log_prob(x)


_log_prob = jax.jit(lambda d, x: d.log_prob(x))


def test_logistic_normal_density_matches_scipy():
    with jax.enable_x64(True):
        loc = jnp.array([0.3, -1.0, 0.5])
        tril = TRIL[0].astype(jnp.float64)
        d = LogisticNormal(loc, tril)
        x, lp, _ = (np.asarray(a) for a in _draw(d, random.PRNGKey(1), 50))
        cov = np.asarray(tril @ tril.T)
        alr = np.log(x[:, :-1] / x[:, -1:])
        expected = stats.multivariate_normal(np.asarray(loc), cov).logpdf(alr) - np.log(x).sum(-1)
        np.testing.assert_allclose(lp, expected, rtol=1e-10)


def test_logistic_normal_softmax_matches_dense_alr_covariance():
    with jax.enable_x64(True):
        loc = np.array([[0.3, -1.0, 0.5, 0.0], [2.0, 0.1, -0.5, 1.0]])
        scale = np.array([[0.5, 1.0, 0.8, 0.3], [0.05, 2.0, 0.4, 1.0]])
        d = LogisticNormalSoftmax(loc, scale)
        x, lp, _ = (np.asarray(a) for a in _draw(d, random.PRNGKey(2), 40))
        s2 = scale**2
        cov = s2[:, :-1, None] * np.eye(3) + s2[:, -1, None, None]  # diag + rank one, dense
        alr_loc = loc[:, :-1] - loc[:, -1:]
        dense = LogisticNormal(alr_loc, np.linalg.cholesky(cov))
        np.testing.assert_allclose(lp, _log_prob(dense, jnp.asarray(x)), rtol=1e-10)
        for b in range(2):
            alr = np.log(x[:, b, :-1] / x[:, b, -1:])
            mvn = stats.multivariate_normal(alr_loc[b], cov[b])
            np.testing.assert_allclose(
                lp[:, b], mvn.logpdf(alr) - np.log(x[:, b]).sum(-1), rtol=1e-10
            )
        # softmax forgets a common shift of the logits
        shifted = LogisticNormalSoftmax(loc + 3.7, scale)
        np.testing.assert_allclose(_log_prob(shifted, jnp.asarray(x)), lp)


@jax.jit
def _jacfwd_log_det(y, delta):
    """log|det d x_{1:K-1} / d y| of softmax++ (written out here), by forward-mode autodiff."""

    def forward(v):
        e = jnp.exp(v)
        return e / (jnp.sum(e) + delta)

    return jax.vmap(lambda v: jnp.linalg.slogdet(jax.jacfwd(forward)(v))[1])(y)


def test_igr_density_matches_jacfwd_change_of_variables():
    with jax.enable_x64(True):
        loc = np.array([0.3, -1.0, 0.5])
        scale = np.array([0.5, 1.0, 0.8])
        tau = 0.6
        for delta in (1.0, 0.2, 4.0):
            d = InvertibleGaussian(loc, scale, tau, jnp.float64(delta))
            x, lp, _ = (np.asarray(a) for a in _draw(d, random.PRNGKey(3), 25))
            y = np.log(x[:, :-1] / x[:, -1:]) + np.log(delta)  # the inverse of softmax++
            np.testing.assert_allclose(
                np.exp(y) / (np.exp(y).sum(-1, keepdims=True) + delta), x[:, :-1], rtol=1e-10
            )
            log_py = stats.norm(loc / tau, scale / tau).logpdf(y).sum(-1)
            log_det = _jacfwd_log_det(jnp.asarray(y), jnp.float64(delta))
            np.testing.assert_allclose(lp, log_py - log_det, rtol=1e-9)


def test_log_prob_uses_intermediates():
    @jax.jit
    def run(key):
        d = InvertibleGaussian(jnp.array([0.5, -0.5]), jnp.array([1.0, 1.0]), 0.8, 2.0)
        x, inter = d.sample_with_intermediates(key, (10,))
        # a different log-value in the intermediates changes the result: it is read, not ignored
        return d.log_prob(x, inter), d.log_prob(x), d.log_prob(x, [inter[0][::-1]])

    with_inter, without, other = run(random.PRNGKey(0))
    np.testing.assert_allclose(with_inter, without, rtol=1e-4)
    assert not np.allclose(other, without)


# -- normalisation and sample moments against quadrature on the 3-simplex ----------------------


def _triangle_grid(n):
    c = (np.arange(n) + 0.5) / n
    x1, x2 = np.meshgrid(c, c, indexing="ij")
    inside = x1 + x2 < 1
    x = np.stack([x1[inside], x2[inside], 1 - x1[inside] - x2[inside]], -1)
    return jnp.asarray(x), 1.0 / n**2


K3_CASES = {
    "igr": lambda: InvertibleGaussian(jnp.array([0.4, -0.3]), jnp.array([0.8, 0.6]), 1.2, 0.7),
    "ln": lambda: LogisticNormal(jnp.array([0.5, -0.2]), jnp.array([[0.9, 0.0], [0.4, 0.6]])),
    "lns": lambda: LogisticNormalSoftmax(jnp.array([0.3, -0.5, 0.1]), jnp.array([0.7, 0.5, 0.9])),
}


@pytest.mark.parametrize("name", sorted(K3_CASES))
def test_k3_normalises_and_samples_match_quadrature(name):
    with jax.enable_x64(True):
        d = K3_CASES[name]()
        x, cell = _triangle_grid(300)  # midpoint rule on the triangle, in x-coordinates
        p = np.exp(np.asarray(_log_prob(d, x)))
        x = np.asarray(x)
        np.testing.assert_allclose(p.sum() * cell, 1.0, atol=1e-6)
        n = 20_000
        s = np.asarray(_draw(d, random.PRNGKey(11), n)[0])
        for f in (lambda v: v[..., 0], lambda v: v[..., 1] * v[..., 2], lambda v: v[..., 2] ** 2):
            exact = float(np.sum(p * f(x)) * cell)
            fs = f(s)
            se = fs.std() / np.sqrt(n)
            assert abs(fs.mean() - exact) < 5 * se, (name, exact, fs.mean(), se)


# -- the tau -> 0 limit of IGR ------------------------------------------------------------------


@pytest.mark.parametrize(("tau", "delta"), [(0.01, 1.0), (0.5, 5.0)])
def test_igr_residual_wins_with_gaussian_orthant_probability(tau, delta):
    """The residual is the largest coordinate iff z_k / tau < log(delta) for all k, z = mu + s eps.

    So P = prod_k Phi((tau log delta - mu_k) / s_k), at every temperature; with delta = 1 it is
    prod_k Phi(-mu_k / s_k), also the probability that the tau -> 0 limit is the last vertex.
    """
    loc = jnp.array([-0.3, 0.2, -0.8])
    scale = jnp.array([1.0, 0.5, 1.5])
    d = InvertibleGaussian(loc, scale, jnp.float32(tau), jnp.float32(delta))
    n = 40_000
    x = _draw(d, random.PRNGKey(5), n)[0]
    p = float(np.prod(stats.norm.cdf((tau * np.log(delta) - np.asarray(loc)) / np.asarray(scale))))
    freq = float(jnp.mean(jnp.argmax(x, axis=-1) == 3))
    se = np.sqrt(p * (1 - p) / n)
    assert abs(freq - p) < 5 * se, (freq, p, se)
    if tau == 0.01:
        # near the discrete limit: samples sit at vertices, so x_K > 1/2 is the same event
        assert float(jnp.mean(jnp.max(x, axis=-1))) > 0.97
        assert abs(float(jnp.mean(x[:, 3] > 0.5)) - p) < 5 * se


# -- float32 stability ----------------------------------------------------------------------


def test_float32_low_temperature_and_extreme_locations():
    loc = jnp.array([[30.0, -30.0, 29.0], [-30.0, -29.0, -30.0]], jnp.float32)
    scale = jnp.array([1.0, 0.5, 2.0], jnp.float32)
    key = random.PRNGKey(7)

    @jax.jit
    def igr(loc, scale, tau):
        def objective(loc, scale, tau):
            d = InvertibleGaussian(loc, scale, tau)
            x, inter = d.sample_with_intermediates(key, (256,))
            return jnp.mean(d.log_prob(x, inter)) + jnp.mean(x[..., 0]), (x, d.log_prob(x, inter))

        grads, (x, lp) = jax.grad(objective, argnums=(0, 1, 2), has_aux=True)(loc, scale, tau)
        return x, lp, grads

    for tau in (0.01, 0.1):
        x, lp, grads = igr(loc, scale, jnp.float32(tau))
        assert x.dtype == jnp.float32
        assert bool(jnp.all(jnp.isfinite(x))) and bool(jnp.all(InvertibleGaussian.support(x)))
        assert bool(jnp.all(jnp.isfinite(lp)))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
        if tau == 0.01:  # near the vertices: the hard case for float32
            assert float(jnp.mean(jnp.max(x, -1))) > 0.99

    @jax.jit
    def others(loc):
        out = []
        for d in (
            LogisticNormal(loc, jnp.eye(3) * 2.0),
            LogisticNormalSoftmax(jnp.concatenate([loc, jnp.zeros((2, 1))], -1), 2 * jnp.ones(4)),
        ):
            x, inter = d.sample_with_intermediates(key, (256,))
            out.append((x, d.log_prob(x, inter)))
        return out

    for x, lp in others(loc):
        assert bool(jnp.all(jnp.isfinite(x))) and bool(jnp.all(InvertibleGaussian.support(x)))
        assert bool(jnp.all(jnp.isfinite(lp)))


def test_trace_log_density_is_finite_at_low_temperature():
    def model():
        numpyro.sample("x", InvertibleGaussian(jnp.array([20.0, -20.0]), jnp.ones(2), 0.01))

    def lp(key):
        seeded = numpyro.handlers.seed(model, key)
        return log_density(seeded, (), {}, {})[0]

    values = jax.jit(jax.vmap(lp))(random.split(random.PRNGKey(0), 16))
    assert bool(jnp.all(jnp.isfinite(values)))


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="scale_tril"):
        LogisticNormal(jnp.zeros(3), jnp.eye(2))
    with pytest.raises(ValueError, match="loc"):
        LogisticNormalSoftmax(jnp.zeros(3), jnp.ones(4))
    with pytest.raises(ValueError, match="2"):
        LogisticNormalSoftmax(jnp.zeros(1), jnp.ones(1))
    with pytest.raises(ValueError, match="temperature"):
        InvertibleGaussian(jnp.zeros((2, 3)), jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match="delta"):
        InvertibleGaussian(jnp.zeros(3), 1.0, 1.0, delta=-1.0)


@pytest.mark.parametrize("name", ["temperature", "delta"])
def test_igr_infinite_or_subnormal_parameters_are_rejected_under_validation(name):
    def make(value, **kw):
        args = {"temperature": 0.5, "delta": 1.0, name: value}
        return InvertibleGaussian(jnp.zeros(3), jnp.ones(3), **args, **kw)

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
        lambda loc, scale: InvertibleGaussian(loc[:3], scale[:3], scale[3]),
        lambda loc, scale: LogisticNormal(loc[:3], jnp.diag(scale[:3])),
        lambda loc, scale: LogisticNormalSoftmax(loc, scale),
    ],
    ids=["igr", "logistic_normal", "logistic_normal_softmax"],
)
def test_half_precision_parameters_are_computed_in_float32(make, dtype):
    """Half-precision parameters are promoted to float32 (docs/decisions.md): a float16 simplex
    point underflows at 6e-5 and its log density was -inf at low temperature."""
    loc = jnp.array([20.0, -20.0, 10.0, 0.0], dtype)
    scale = jnp.array([1.0, 2.0, 0.5, 0.05], dtype)
    half = make(loc, scale)
    ref = make(loc.astype(jnp.float32), scale.astype(jnp.float32))
    key = random.PRNGKey(6)
    x = half.sample(key, (200,))
    assert x.dtype == jnp.float32
    np.testing.assert_array_equal(x, ref.sample(key, (200,)))
    lp = half.log_prob(x)
    np.testing.assert_array_equal(lp, ref.log_prob(x))
    assert bool(jnp.all(jnp.isfinite(lp)))


def test_logistic_normal_shared_scale_tril_matches_broadcast():
    """A Cholesky factor shared by the batch (kept unbroadcast: one multi-RHS solve) gives the
    same samples and densities as the same factor repeated for every batch element."""
    import numpyro_relax as nr

    tril = jnp.array([[1.0, 0.0], [0.4, 0.7]])
    loc = jnp.array([[0.3, -0.2], [1.0, 0.5], [0.0, 0.0]])
    shared = nr.LogisticNormal(loc, tril)
    repeated = nr.LogisticNormal(loc, jnp.broadcast_to(tril, (3, 2, 2)))
    key = jax.random.PRNGKey(4)
    x, inter = shared.sample_with_intermediates(key, (5,))
    x2, inter2 = repeated.sample_with_intermediates(key, (5,))
    np.testing.assert_allclose(x, x2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(shared.log_prob(x, inter), repeated.log_prob(x2, inter2), rtol=1e-5)
    np.testing.assert_allclose(shared.covariance_matrix, repeated.covariance_matrix, rtol=1e-6)


def _compiled_bytes(f, *args):
    """Temporaries plus outputs of ``jit(f)`` by XLA's memory analysis (compiled, not run)."""
    m = jax.jit(f).lower(*args).compile().memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes


def test_logistic_normal_log_prob_does_not_copy_the_factor_per_sample():
    """A batch of B factors and a sample of S draws: the memory of ``log_prob`` grows like
    S x B x K (a few vectors per draw), not S x B x K^2 (one factor per draw)."""
    n, batch = 255, 2
    rng = np.random.default_rng(0)
    tril = np.tril(rng.normal(size=(batch, n, n)) * 0.1 / np.sqrt(n), -1) + 0.8 * np.eye(n)
    tril = jnp.asarray(tril, jnp.float32)
    loc = jnp.asarray(rng.normal(size=(batch, n)) * 0.3, jnp.float32)

    def log_prob(loc, tril, x):
        return LogisticNormal(loc, tril).log_prob(x)

    def peak(s):
        return _compiled_bytes(log_prob, loc, tril, jnp.full((s, batch, n + 1), 1.0 / (n + 1)))

    vector = 64 * batch * (n + 1) * 4  # one float32 (64, B, K) array
    factors = batch * n * n * 4
    small, large = peak(64), peak(128)
    # before: every draw carried its own factor, (large - small) = 64 * factors
    assert large - small <= 8 * vector
    assert small <= 8 * vector + 4 * factors

    @jax.jit
    def sample_and_log_prob(loc, tril, key):
        x, inter = LogisticNormal(loc, tril).sample_with_intermediates(key, (5,))
        return x, LogisticNormal(loc, tril).log_prob(x, inter), log_prob(loc, tril, x)

    x, lp_inter, lp = map(np.asarray, sample_and_log_prob(loc, tril, random.PRNGKey(8)))
    log_x = np.log(x.astype(np.float64))
    alr = log_x[..., :-1] - log_x[..., -1:]
    for b in range(batch):
        cov = np.asarray(tril[b], np.float64) @ np.asarray(tril[b], np.float64).T
        ref = stats.multivariate_normal(np.asarray(loc[b]), cov).logpdf(alr[:, b])
        ref = ref - np.sum(log_x[:, b], axis=-1)
        np.testing.assert_allclose(lp_inter[:, b], ref, rtol=1e-5)
        np.testing.assert_allclose(lp[:, b], ref, rtol=1e-5)
