"""Gaussian mixture with sampled assignments: AutoDiscrete beside enumeration.
=============================================================================

NumPyro's Gaussian-mixture tutorial model (Pyro's "Gaussian Mixture Model" tutorial, in
NumPyro): ``K`` components with Dirichlet weights, Normal locations and one LogNormal scale, and
an integer assignment per data point,

.. math::
    w \\sim \\mathrm{Dir}(0.5 \\cdot \\mathbf 1), \\quad \\sigma \\sim \\mathrm{LogNormal}(0, 2),
    \\quad \\mu_k \\sim N(0, 10^2), \\quad z_i \\sim \\mathrm{Cat}(w), \\quad
    x_i \\sim N(\\mu_{z_i}, \\sigma^2),

fitted to simulated data in two ways, from the same starting point:

1. **AutoDiscrete + TraceDiscrete_ELBO** (this library): the model is unchanged;
   :class:`~numpyro_relax.infer.autoguide.AutoDiscrete` gives every assignment a categorical
   guide with its own logits and the globals an ``AutoNormal``; the assignments are *sampled*
   and :class:`~numpyro_relax.infer.TraceDiscrete_ELBO` differentiates them with an unbiased
   score-function estimator (``--estimator``, leave-one-out baselines by default, with
   ``--particles`` particles). This is what works when enumeration does not: many discrete
   sites that interact, or a model that is not written for it.
2. **TraceEnum_ELBO + AutoDelta** (NumPyro's tutorial): the model is enumerated
   (``config_enumerate``), the assignments are summed out exactly, and the globals get a point
   estimate (MAP). The assignment posteriors are computed afterwards, at the MAP.

Both start from the tutorial's initialisation (uniform weights, scale :math:`\\sqrt{\\mathrm{var}/2}`,
locations at data quantiles). The script prints cluster recovery (fitted locations against
the truth, assignment accuracy after matching the components by location), each objective at
the end (AutoDiscrete: the ELBO, a lower bound of :math:`\\log p(x)`; TraceEnum + AutoDelta:
:math:`\\log p(x, \\hat\\theta)` with the assignments summed out, no entropy), the marginal log
joint :math:`\\log p(x, \\hat\\theta)` of both point estimates, and the wall time of each fit
(compilation included). The figure ``gmm.png`` shows the data with the fitted mixtures, the
assignment probabilities of both methods, and the two loss curves.

Usage::

    python examples/gmm.py
    python examples/gmm.py --num-components 2 --num-data 500 --estimator vargrad
    python examples/gmm.py --device gpu
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jax.scipy.special import logsumexp
from numpyro import handlers
from numpyro.contrib.funsor import config_enumerate
from numpyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, init_to_value
from numpyro.infer.autoguide import AutoDelta, AutoNormal

from numpyro_relax.infer import TraceDiscrete_ELBO
from numpyro_relax.infer.autoguide import AutoDiscrete
from numpyro_relax.infer.core import estimators_for

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GLOBALS = ("weights", "scale", "locs")


def model(data, num_components):
    weights = numpyro.sample("weights", dist.Dirichlet(0.5 * jnp.ones(num_components)))
    scale = numpyro.sample("scale", dist.LogNormal(0.0, 2.0))
    with numpyro.plate("components", num_components):
        locs = numpyro.sample("locs", dist.Normal(0.0, 10.0))
    with numpyro.plate("data", data.shape[0]):
        assignment = numpyro.sample("assignment", dist.Categorical(weights))
        numpyro.sample("obs", dist.Normal(locs[assignment], scale), obs=data)


def simulate(rng_key, num_data, num_components):
    """Equal-weight components at 4 standard deviations from each other, scale 1."""
    true_locs = 4.0 * (jnp.arange(num_components) - (num_components - 1) / 2)
    key_labels, key_noise = jax.random.split(rng_key)
    labels = jax.random.randint(key_labels, (num_data,), 0, num_components)
    data = true_locs[labels] + jax.random.normal(key_noise, (num_data,))
    return data, labels, true_locs


def tutorial_init(data, num_components):
    """Uniform weights, scale sqrt(var / 2), locations at data quantiles (the tutorial picks
    random data points and keeps the best of many seeds; quantiles need no restarts)."""
    quantiles = (jnp.arange(num_components) + 0.5) / num_components
    return init_to_value(
        values={
            "weights": jnp.ones(num_components) / num_components,
            "scale": jnp.sqrt(data.var() / 2),
            "locs": jnp.quantile(data, quantiles),
        }
    )


def assignment_probs(data, weights, locs, scale):
    """p(z_i = k | x_i, w, mu, sigma), by enumeration."""
    log_joint = jnp.log(weights) + dist.Normal(locs, scale).log_prob(data[:, None])
    return jnp.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


def marginal_log_joint(data, weights, locs, scale):
    """log p(x, w, mu, sigma) with the assignments summed out (the density TraceEnum_ELBO's
    loss is the negative of, for a point-mass guide)."""
    k = locs.shape[0]
    log_prior = (
        dist.Dirichlet(0.5 * jnp.ones(k)).log_prob(weights)
        + dist.LogNormal(0.0, 2.0).log_prob(scale)
        + dist.Normal(0.0, 10.0).log_prob(locs).sum()
    )
    log_joint = jnp.log(weights) + dist.Normal(locs, scale).log_prob(data[:, None])
    return float(log_prior + logsumexp(log_joint, axis=1).sum())


def fit(model_fn, guide, loss, data, args, rng_key):
    svi = SVI(model_fn, guide, optax.adam(args.learning_rate), loss)
    start = time.perf_counter()
    result = svi.run(
        rng_key, args.num_steps, data, args.num_components, progress_bar=not args.no_progress
    )
    jax.block_until_ready(result.params)
    return result, time.perf_counter() - start


def recovery(locs, assignment, labels, true_locs):
    """Fitted locations matched to the true ones by rank (the simulated ones are sorted), and
    the accuracy of the assignments after the same matching."""
    order = np.argsort(np.asarray(locs))
    rank = np.argsort(order)
    accuracy = float(np.mean(rank[np.asarray(assignment)] == np.asarray(labels)))
    return np.asarray(locs)[order], accuracy


def run_autodiscrete(data, labels, true_locs, args, rng_key):
    key_fit, key_eval = jax.random.split(rng_key)
    guide = AutoDiscrete(
        model, continuous=AutoNormal, init_loc_fn=tutorial_init(data, args.num_components)
    )
    loss = TraceDiscrete_ELBO(estimator=args.estimator, num_particles=args.particles)
    result, seconds = fit(model, guide, loss, data, args, key_fit)
    median = guide.median(result.params)
    elbo = -Trace_ELBO(num_particles=args.eval_particles).loss(
        key_eval, result.params, model, guide, data, args.num_components
    )
    locs, accuracy = recovery(median["locs"], median["assignment"], labels, true_locs)
    probs = jax.nn.softmax(result.params["assignment_auto_logits"], axis=-1)
    return {
        "name": f"AutoDiscrete + TraceDiscrete_ELBO ({args.estimator})",
        "short": "AutoDiscrete",
        "objective": ("ELBO", float(elbo)),
        "log_joint": marginal_log_joint(data, median["weights"], median["locs"], median["scale"]),
        "locs": locs,
        "accuracy": accuracy,
        "seconds": seconds,
        "losses": np.asarray(result.losses),
        "point": median,
        "probs": probs,
    }


def run_enum(data, labels, true_locs, args, rng_key):
    globals_only = handlers.block(
        model, hide_fn=lambda msg: msg["type"] == "sample" and msg["name"] not in GLOBALS
    )
    guide = AutoDelta(globals_only, init_loc_fn=tutorial_init(data, args.num_components))
    loss = TraceEnum_ELBO(max_plate_nesting=1)
    result, seconds = fit(config_enumerate(model), guide, loss, data, args, rng_key)
    point = guide.median(result.params)
    probs = assignment_probs(data, point["weights"], point["locs"], point["scale"])
    locs, accuracy = recovery(point["locs"], probs.argmax(-1), labels, true_locs)
    return {
        "name": "AutoDelta + TraceEnum_ELBO (MAP, enumerated)",
        "short": "TraceEnum + AutoDelta",
        "objective": ("log p(x, MAP)", float(-result.losses[-1])),
        "log_joint": marginal_log_joint(data, point["weights"], point["locs"], point["scale"]),
        "locs": locs,
        "accuracy": accuracy,
        "seconds": seconds,
        "losses": np.asarray(result.losses),
        "point": point,
        "probs": probs,
    }


def plot(data, true_locs, runs, path):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    grid = jnp.linspace(data.min() - 2, data.max() + 2, 400)
    k = true_locs.shape[0]
    truth = jnp.exp(logsumexp(dist.Normal(true_locs, 1.0).log_prob(grid[:, None]), 1)) / k
    axes[0].hist(np.asarray(data), bins=50, density=True, color="0.8", label="data")
    axes[0].plot(grid, truth, "k--", label="true mixture")
    for run, style in zip(runs, ("C0-", "C1:"), strict=True):
        p = run["point"]
        log_dens = jnp.log(p["weights"]) + dist.Normal(p["locs"], p["scale"]).log_prob(
            grid[:, None]
        )
        axes[0].plot(grid, jnp.exp(logsumexp(log_dens, 1)), style, label=run["short"])
    axes[0].set(title="data and fitted mixtures", xlabel="x", ylabel="density")
    axes[0].legend(fontsize=8)
    order = [np.argsort(np.asarray(run["point"]["locs"])) for run in runs]
    for j in range(k):
        axes[1].plot(data, runs[0]["probs"][:, order[0][j]], "o", ms=3, alpha=0.5, color=f"C{j}")
        xs = np.argsort(np.asarray(data))
        axes[1].plot(data[xs], runs[1]["probs"][xs, order[1][j]], "-", color=f"C{j}", lw=1)
    axes[1].set(
        title="assignment probabilities (dots: AutoDiscrete q; lines: exact at MAP)",
        xlabel="x",
        ylabel="P(z = k)",
    )
    axes[1].title.set_fontsize(9)
    tails = []
    for run, color in zip(runs, ("C0", "C1"), strict=True):
        per_point = -run["losses"] / data.shape[0]
        tails.append(per_point[len(per_point) // 10 :])
        axes[2].plot(per_point, color=color, lw=0.8, label=f"{run['short']}: {run['objective'][0]}")
    low, high = np.percentile(np.concatenate(tails), [0.5, 100])
    axes[2].set(
        title="objective per data point (higher is better)",
        xlabel="SVI step",
        ylim=(low - 0.1 * (high - low), high + 0.1 * (high - low)),
    )
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(args):
    key_data, key_discrete, key_enum = jax.random.split(jax.random.key(args.seed), 3)
    data, labels, true_locs = simulate(key_data, args.num_data, args.num_components)
    runs = [
        run_autodiscrete(data, labels, true_locs, args, key_discrete),
        run_enum(data, labels, true_locs, args, key_enum),
    ]
    print(f"\n{args.num_data} points, {args.num_components} components at {np.asarray(true_locs)}")
    for run in runs:
        name, value = run["objective"]
        print(f"\n{run['name']}")
        print(f"  locations      {np.array2string(run['locs'], precision=3)}")
        print(f"  accuracy       {run['accuracy']:.3f}")
        print(f"  {name:<14} {value:.2f}")
        print(f"  log p(x, theta) at its point estimate: {run['log_joint']:.2f}")
        print(f"  wall time      {run['seconds']:.1f} s ({args.num_steps} steps)")
    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "gmm.png")
    plot(data, true_locs, runs, path)
    print(f"\nwrote {path}")
    return {"runs": runs, "true_locs": true_locs, "png": path}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Gaussian mixture: AutoDiscrete + TraceDiscrete_ELBO beside "
        "TraceEnum_ELBO + AutoDelta",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--num-data", type=int, default=300, help="simulated data points")
    parser.add_argument("--num-components", type=int, default=3, help="mixture components K")
    parser.add_argument("--num-steps", type=int, default=1500, help="SVI steps of each fit")
    parser.add_argument("--learning-rate", type=float, default=0.05, help="Adam learning rate")
    parser.add_argument(
        "--estimator",
        choices=estimators_for("categorical"),
        default="loo",
        help="TraceDiscrete_ELBO's estimator for the assignments",
    )
    parser.add_argument(
        "--particles", type=int, default=4, help="particles of TraceDiscrete_ELBO per step"
    )
    parser.add_argument(
        "--eval-particles", type=int, default=200, help="particles of the final ELBO estimate"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (data and fits)")
    parser.add_argument("--output-dir", default="outputs/gmm", help="where gmm.png is written")
    parser.add_argument("--no-progress", action="store_true", help="no SVI progress bar")
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"], help="JAX platform")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    numpyro.set_platform(args.device)
    main(args)
