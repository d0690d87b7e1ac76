"""Gradient quality: bias and variance of each relaxation and estimator against an exact gradient.

Two small problems whose expectation is enumerable:

- ``bits``: four independent bits :math:`b_d \\sim \\mathrm{Bernoulli}(\\sigma(\\theta_d))` and
  :math:`f(b) = (c^\\top b - 0.5)^2` (16 configurations);
- ``cats``: two independent 3-category variables :math:`z_v \\sim
  \\mathrm{OneHotCategorical}(\\mathrm{softmax}(\\theta_v))` and :math:`f(z) = (\\sum_{vk} C_{vk}
  z_{vk} - 0.6)^2` (9 configurations).

The exact gradient of :math:`\\mathbb{E}[f]` comes from the enumeration. Every method is turned
into a one-estimate function ``(theta, key) -> grad estimate``; ``replicates`` independent
estimates give the bias (with its Monte Carlo standard error) and the variance (trace of the
covariance). Wall time per estimate is measured on the jitted, vmapped batch of replicates, and
the methods are compared **at equal wall time** through the mean squared error of an average of
as many estimates as fit in a fixed budget: ``RMSE(T) = sqrt(|bias|^2 + tr Var * t / T)``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

import numpy as np
from _methods import Missing, ours_class

TAU = 0.5
BUDGET_S = 1e-3  # the equal wall-time budget for RMSE(T)

THETA_BITS = np.array([-1.0, -0.3, 0.4, 1.2], np.float32)
C_BITS = np.array([0.6, -0.4, 0.8, 0.3], np.float32)
THETA_CATS = np.array([[0.5, -0.2, 0.0], [-0.6, 0.3, 0.9]], np.float32)
C_CATS = np.array([[0.2, 0.9, -0.4], [0.7, -0.3, 0.5]], np.float32)


def f_bits(b):
    import jax.numpy as jnp

    return (jnp.dot(b, jnp.asarray(C_BITS)) - 0.5) ** 2


def f_cats(z):
    import jax.numpy as jnp

    return (jnp.sum(z * jnp.asarray(C_CATS)) - 0.6) ** 2


def exact_gradient(problem: str) -> np.ndarray:
    """Gradient of the enumerated expectation with respect to the logits."""
    import jax
    import jax.numpy as jnp

    if problem == "bits":
        configs = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=4)))
        fvals = jax.vmap(f_bits)(configs)

        def expectation(theta):
            logp = jnp.sum(
                configs * jax.nn.log_sigmoid(theta) + (1 - configs) * jax.nn.log_sigmoid(-theta),
                axis=-1,
            )
            return jnp.sum(jnp.exp(logp) * fvals)

        return np.asarray(jax.grad(expectation)(jnp.asarray(THETA_BITS)))
    eye = np.eye(3, dtype=np.float32)
    configs = jnp.asarray([np.stack([eye[i], eye[j]]) for i in range(3) for j in range(3)])
    fvals = jax.vmap(f_cats)(configs)

    def expectation(theta):
        logp = jnp.sum(configs * jax.nn.log_softmax(theta, axis=-1), axis=(-2, -1))
        return jnp.sum(jnp.exp(logp) * fvals)

    return np.asarray(jax.grad(expectation)(jnp.asarray(THETA_CATS)))


# ------------------------------------------------------------------------------------------
# one-estimate functions
# ------------------------------------------------------------------------------------------
def _pathwise(make: Callable, transform: Callable | None = None):
    """Reparameterisation gradient of f at a sample of ``make(theta)``."""
    import jax

    def est(theta, key, f):
        def obj(t):
            x = make(t).sample(key)
            return f(transform(x) if transform else x)

        return jax.grad(obj)(theta)

    return est


def _estimator(name: str, **options):
    def est(theta, key, f, family):
        from numpyro_relax import estimators

        fn = getattr(estimators, name, None)
        if fn is None:
            raise Missing(f"numpyro_relax.estimators has no `{name}`")
        return fn(f, theta, key, family=family, **options)[1]

    return est


def quality_methods() -> dict[str, list[tuple[str, str, Callable]]]:
    """``problem -> [(label, kind, est(theta, key))]``; ``kind`` is relaxation/estimator."""
    import jax
    import jax.numpy as jnp

    def dist(name, module, build):
        def make(t):
            return build(ours_class(name, module), t)

        return make

    bern = "distributions.bernoulli"
    cat = "distributions.categorical"
    bits: list[tuple[str, str, Callable]] = [
        (
            "StraightThroughBernoulli",
            "relaxation",
            _pathwise(dist("StraightThroughBernoulli", bern, lambda c, t: c(logits=t))),
        ),
        (
            f"RelaxedBernoulliStraightThrough τ={TAU}",
            "relaxation",
            _pathwise(dist("RelaxedBernoulliStraightThrough", bern, lambda c, t: c(TAU, logits=t))),
        ),
        (
            f"binary Concrete τ={TAU} (sigmoid of LogitRelaxedBernoulli)",
            "relaxation",
            _pathwise(
                dist("LogitRelaxedBernoulli", bern, lambda c, t: c(TAU, logits=t)),
                jax.nn.sigmoid,
            ),
        ),
        (
            f"CorrelatedRelaxedBernoulli R=I τ={TAU}",
            "relaxation",
            _pathwise(
                dist(
                    "CorrelatedRelaxedBernoulli",
                    bern,
                    lambda c, t: c(jax.nn.sigmoid(t), jnp.eye(t.shape[-1]), TAU),
                )
            ),
        ),
    ]
    cats: list[tuple[str, str, Callable]] = [
        (
            f"RelaxedOneHotCategorical τ={TAU}",
            "relaxation",
            _pathwise(dist("RelaxedOneHotCategorical", cat, lambda c, t: c(TAU, logits=t))),
        ),
        (
            f"RelaxedOneHotCategoricalStraightThrough τ={TAU}",
            "relaxation",
            _pathwise(
                dist("RelaxedOneHotCategoricalStraightThrough", cat, lambda c, t: c(TAU, logits=t))
            ),
        ),
        (
            f"DecoupledStraightThroughGumbelSoftmax τf=1 τb={TAU}",
            "relaxation",
            _pathwise(
                dist(
                    "DecoupledStraightThroughGumbelSoftmax",
                    cat,
                    lambda c, t: c(1.0, TAU, logits=t),
                )
            ),
        ),
    ]
    shared = [
        ("reinforce", "estimator", _estimator("reinforce")),
        (
            "reinforce, LOO baseline (2 samples)",
            "estimator",
            _estimator("reinforce", num_samples=2, baseline="loo"),
        ),
        ("arsm", "estimator", _estimator("arsm")),
        (f"rebar τ={TAU}", "estimator", _estimator("rebar", temperature=TAU)),
        (f"gumbel_softmax τ={TAU}", "estimator", _estimator("gumbel_softmax", temperature=TAU)),
        (f"straight_through τ={TAU}", "estimator", _estimator("straight_through", temperature=TAU)),
    ]
    binary_only = [
        ("arm", "estimator", _estimator("arm")),
        ("disarm", "estimator", _estimator("disarm")),
    ]

    def wrap(entries, family, f):
        out = []
        for label, kind, est in entries:
            if kind == "estimator":
                out.append((label, kind, lambda t, k, est=est: est(t, k, f, family)))
            else:
                out.append((label, kind, lambda t, k, est=est: est(t, k, f)))
        return out

    return {
        "bits": wrap(bits, "bernoulli", f_bits) + wrap(shared + binary_only, "bernoulli", f_bits),
        "cats": wrap(cats, "categorical", f_cats) + wrap(shared, "categorical", f_cats),
    }


def evaluate(est: Callable, problem: str, exact: np.ndarray, replicates: int) -> dict:
    """Bias, variance and time per estimate of ``est`` over ``replicates`` independent keys."""
    import jax
    import jax.numpy as jnp

    theta = jnp.asarray(THETA_BITS if problem == "bits" else THETA_CATS)
    keys = jax.random.split(jax.random.key(1), replicates)
    batch = jax.jit(jax.vmap(lambda k: est(theta, k)))
    g = np.asarray(jax.block_until_ready(batch(keys)), dtype=np.float64)  # compiles
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(batch(keys))
        times.append((time.perf_counter() - t0) / replicates)
    t_est = float(np.median(times))
    g = g.reshape(replicates, -1)
    mean = g.mean(0)
    var = g.var(0, ddof=1)
    bias = mean - exact.reshape(-1)
    se = np.sqrt(var / replicates)
    norm = float(np.linalg.norm(exact))
    tr_var = float(var.sum())
    bias_norm = float(np.linalg.norm(bias))
    z = float(np.max(np.abs(bias) / np.maximum(se, 1e-30)))
    rmse = math.sqrt(bias_norm**2 + tr_var * t_est / BUDGET_S)
    return {
        "bias_norm": bias_norm,
        "rel_bias": bias_norm / norm,
        "bias_z_max": z,
        "bias_significant": bool(z > 4.0),
        "trace_variance": tr_var,
        "rel_std": math.sqrt(tr_var) / norm,
        "time_per_estimate_s": t_est,
        "rmse_at_budget": rmse,
        "rel_rmse_at_budget": rmse / norm,
        "replicates": replicates,
    }


def run_quality(replicates: int, log: Callable[[str], None] = print) -> dict:
    """All problems, all methods present in this checkout."""
    out: dict = {"budget_s": BUDGET_S, "problems": {}, "skipped": []}
    for problem, entries in quality_methods().items():
        exact = exact_gradient(problem)
        rows = []
        for label, kind, est in entries:
            try:
                res = evaluate(est, problem, exact, replicates)
            except Missing as e:
                out["skipped"].append({"problem": problem, "method": label, "why": str(e)})
                log(f"  quality {problem:5s} {label}: skipped ({e})")
                continue
            rows.append({"method": label, "kind": kind, **res})
            log(
                f"  quality {problem:5s} {label:55s} rel.bias {res['rel_bias']:.3f} "
                f"rel.sd {res['rel_std']:.2f} t {res['time_per_estimate_s'] * 1e6:.2f}us"
            )
        out["problems"][problem] = {
            "theta": np.round(THETA_BITS if problem == "bits" else THETA_CATS, 4).tolist(),
            "c": np.round(C_BITS if problem == "bits" else C_CATS, 4).tolist(),
            "exact_gradient": np.round(exact.astype(np.float64), 6).tolist(),
            "rows": rows,
        }
    return out
