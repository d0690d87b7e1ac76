"""A 1-D Gaussian mixture with relaxed one-hot assignments, fitted with SVI and checked with ArviZ.

The model gives every data point a one-hot assignment :math:`z_i` to one of ``K`` components,

.. math::
    w \\sim \\mathrm{Dirichlet}(\\mathbf 1), \\quad \\mu_k \\sim N(0, 5^2), \\quad
    \\sigma \\sim \\mathrm{HalfNormal}(2), \\quad z_i \\sim \\mathrm{Cat}(w), \\quad
    y_i \\sim N(z_i^\\top \\mu, \\sigma^2),

and the guide is mean-field: a Dirichlet, Normals and a log-normal for the globals and one set of
assignment logits per data point. ``--relaxation`` picks how the assignments are relaxed:

* ``st-gumbel-softmax`` (default): the guide samples exact one-hot assignments with
  :class:`~numpyro_relax.RelaxedOneHotCategoricalStraightThrough` (gradients through the
  Gumbel-softmax at ``--temperature``), the model keeps the discrete prior
  :class:`~numpyro_relax.OneHotCategorical`, and
  :class:`~numpyro_relax.infer.StraightThrough_ELBO` (``TraceMeanField_ELBO`` for straight-through
  guides) uses the exact KL registered for that pair. The fitted model is the discrete mixture itself.
* ``reinforce-loo``: the guide samples the assignments from
  :class:`~numpyro_relax.OneHotCategorical` itself, and
  :class:`~numpyro_relax.infer.TraceLOO_ELBO` differentiates them with the score function and
  leave-one-out baselines per data point (``--particles``, default 4). Unbiased, no temperature.

The likelihood of a point given its assignment is :math:`\\sum_k z_k \\log N(y;\\mu_k,\\sigma^2)`
(exact for one-hot :math:`z`; see ``AssignedNormal`` for why it is written this way). The Gumbel-
softmax relaxation of the assignments with a relaxed prior (``Trace_ELBO``) is not offered: with
confident assignments its Monte Carlo KL is large, pushes the assignments back to the middle of
the simplex and ends in a poor fit.

After fitting, :func:`numpyro_relax.diagnostics.svi_to_arviz` turns the guide into ArviZ data
(posterior draws, posterior predictive, pointwise log-likelihood), and the script prints
``az.summary`` of the globals and ``az.loo``, plots the posterior predictive check
(``az.plot_ppc``; ``az.plot_ppc_dist`` in ArviZ 1.x), the posteriors of the globals and the
PSIS-LOO :math:`\\hat k` values, and reports :func:`~numpyro_relax.diagnostics.psis_khat` of
the whole guide as an importance sampler.

Some PSIS-LOO :math:`\\hat k` are flagged (41 of 300 with the defaults), and the script says why
(:func:`explain_loo_khat`): the pointwise log-likelihood is taken at each draw's sampled
assignment, and a point whose guide gives even 0.1% to a distant component is, in a few of the
400 draws, assigned there, with a likelihood several nats lower: a heavy tail of importance
ratios. The flagged points are mostly confidently assigned ones, not the points between
clusters. With the assignment marginalised, :math:`\\log\\sum_k w_k N(y_i;\\mu_k,\\sigma^2)`,
no :math:`\\hat k` is flagged: LOO of the mixture itself is reliable.

Usage::

    python examples/mixture.py
    python examples/mixture.py --relaxation reinforce-loo --particles 8
"""

from __future__ import annotations

import argparse
import textwrap
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpyro

from numpyro_relax.infer import StraightThrough_ELBO, TraceLOO_ELBO

RELAXATIONS = ("st-gumbel-softmax",) + (("reinforce-loo",) if TraceLOO_ELBO else ())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--relaxation",
        choices=RELAXATIONS,
        default="st-gumbel-softmax",
        help="how the guide's assignments are sampled and differentiated (see the docstring)",
    )
    parser.add_argument("--num-data", type=int, default=300, help="simulated data points")
    parser.add_argument(
        "--locs",
        default="-3,0,3",
        help="comma-separated true component locations (K = their number)",
    )
    parser.add_argument(
        "--true-scale", type=float, default=0.7, help="true standard deviation of every component"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.5,
        help="Gumbel-softmax temperature of the straight-through gradient",
    )
    parser.add_argument("--steps", type=int, default=2000, help="SVI steps")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate")
    parser.add_argument(
        "--particles",
        type=int,
        default=None,
        help="ELBO particles (None: 1, or 4 for reinforce-loo)",
    )
    parser.add_argument(
        "--num-samples", type=int, default=400, help="guide draws for ArviZ (2 chains)"
    )
    parser.add_argument(
        "--khat-samples",
        type=int,
        default=1000,
        help="guide draws for psis_khat (the guide as an importance sampler)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (data and fit)")
    parser.add_argument(
        "--device", choices=("cpu", "gpu"), default="cpu", help="JAX platform to run on"
    )
    parser.add_argument("--out-dir", default="outputs/mixture", help="where the PNGs are written")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--no-progress", action="store_true", help="no SVI progress bar")
    args = parser.parse_args(argv)
    if args.particles is None:
        args.particles = 4 if args.relaxation == "reinforce-loo" else 1
    if args.relaxation == "reinforce-loo" and args.particles < 2:
        parser.error("reinforce-loo needs --particles >= 2 (leave-one-out baselines)")
    try:
        args.locs = tuple(float(v) for v in args.locs.split(","))
    except ValueError:
        parser.error(f"--locs must be comma-separated numbers, got {args.locs!r}")
    if len(args.locs) < 2:
        parser.error("--locs needs at least two components")
    for name in ("num_data", "steps", "particles", "num_samples", "khat_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.temperature <= 0 or args.true_scale <= 0:
        parser.error("--temperature and --true-scale must be positive")
    return args


def simulate(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Data from the mixture with weights proportional to ``1, 2, ..., K``."""
    rng = np.random.default_rng(args.seed)
    k = len(args.locs)
    weights = np.arange(1, k + 1, dtype=float)
    labels = rng.choice(k, size=args.num_data, p=weights / weights.sum())
    y = np.asarray(args.locs)[labels] + args.true_scale * rng.standard_normal(args.num_data)
    return y.astype(np.float32), labels


def assigned_normal() -> type:
    """The class :class:`AssignedNormal` (built lazily: it needs NumPyro's distributions)."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    class AssignedNormal(dist.Distribution):
        r"""A data point given its (relaxed) one-hot assignment :math:`z`.

        .. math::
            \log p(y \mid z) = \sum_k z_k \log N(y;\, \mu_k, \sigma^2).

        For a one-hot :math:`z` this is the component's Normal density, so with straight-through
        assignments the model is exactly the discrete mixture; the gradient with respect to
        :math:`z_k` is the component's log-likelihood, which points the assignment at the best
        component (with ``Normal(z @ locs, scale)`` it would be linear in the locations and
        favour the farthest one). For a relaxed :math:`z` it is the log of a geometric mixture,
        :math:`\log N(y; z^\top\mu, \sigma^2)` minus the spread
        :math:`\tfrac12 \sigma^{-2}\,\mathrm{Var}_z(\mu)`, which penalises assignments
        between components (unnormalised in :math:`y`); samples are drawn from
        :math:`N(z^\top \mu, \sigma^2)`.
        """

        arg_constraints = {
            "assignment": constraints.simplex,
            "locs": constraints.real_vector,
            "scale": constraints.positive,
        }
        pytree_data_fields = ("assignment", "locs", "scale")
        support = constraints.real

        def __init__(
            self, assignment: Any, locs: Any, scale: Any, *, validate_args: bool | None = None
        ) -> None:
            self.assignment, self.locs, self.scale = assignment, locs, scale
            super().__init__(jnp.shape(assignment)[:-1], (), validate_args=validate_args)

        def sample(self, key: Any, sample_shape: tuple[int, ...] = ()) -> Any:
            mean = jnp.sum(self.assignment * self.locs, -1)
            eps = jax.random.normal(key, tuple(sample_shape) + self.batch_shape)
            return mean + self.scale * eps

        def log_prob(self, value: Any) -> Any:
            comp = dist.Normal(self.locs, self.scale).log_prob(jnp.asarray(value)[..., None])
            return jnp.sum(self.assignment * comp, -1)

    return AssignedNormal


def build(args: argparse.Namespace, y: np.ndarray) -> tuple[Any, Any, Any]:
    """The model, the guide and the ELBO for ``args.relaxation``."""
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    import numpyro_relax as nr

    AssignedNormal = assigned_normal()
    k = len(args.locs)
    straight_through = args.relaxation == "st-gumbel-softmax"

    def model(y: Any, temperature: Any) -> None:
        weights = numpyro.sample("weights", dist.Dirichlet(jnp.ones(k)))
        locs = numpyro.sample("locs", dist.Normal(0.0, 5.0).expand([k]).to_event(1))
        scale = numpyro.sample("scale", dist.HalfNormal(2.0))
        with numpyro.plate("data", y.shape[0]):
            z = numpyro.sample("z", nr.OneHotCategorical(probs=weights))
            numpyro.sample("y", AssignedNormal(z, locs, scale), obs=y)

    # Start the guide from a few k-means (Lloyd) iterations: component locations, a common scale,
    # and each point's assignment logits at its Gaussian log-likelihood under them. From uniform
    # assignments every component would be pulled to the overall mean.
    init_locs = np.linspace(*np.quantile(y, [0.05, 0.95]), k)
    for _ in range(10):
        nearest = np.argmin(np.abs(y[:, None] - init_locs), axis=1)
        init_locs = np.array(
            [y[nearest == j].mean() if np.any(nearest == j) else init_locs[j] for j in range(k)]
        )
    init_locs = init_locs.astype(np.float32)
    init_scale = float(np.sqrt(np.mean((y - init_locs[nearest]) ** 2)))
    init_logits = -0.5 * ((y[:, None] - init_locs) / init_scale) ** 2

    def guide(y: Any, temperature: Any) -> None:
        conc = numpyro.param("weights_conc", jnp.full(k, 10.0), constraint=constraints.positive)
        numpyro.sample("weights", dist.Dirichlet(conc))
        loc_loc = numpyro.param("locs_loc", jnp.asarray(init_locs))
        loc_scale = numpyro.param("locs_scale", jnp.full(k, 0.1), constraint=constraints.positive)
        numpyro.sample("locs", dist.Normal(loc_loc, loc_scale).to_event(1))
        s_loc = numpyro.param("scale_loc", jnp.log(init_scale))
        s_scale = numpyro.param("scale_scale", 0.1, constraint=constraints.positive)
        numpyro.sample("scale", dist.LogNormal(s_loc, s_scale))
        logits = numpyro.param("assign_logits", jnp.asarray(init_logits, jnp.float32))
        with numpyro.plate("data", y.shape[0]):
            if straight_through:
                numpyro.sample(
                    "z", nr.RelaxedOneHotCategoricalStraightThrough(temperature, logits=logits)
                )
            else:
                numpyro.sample("z", nr.OneHotCategorical(logits=logits))

    if straight_through:
        # TraceMeanField_ELBO with the exact KL registered for (straight-through, OneHotCategorical)
        elbo = StraightThrough_ELBO(num_particles=args.particles)
    else:
        elbo = TraceLOO_ELBO(num_particles=args.particles)
    return model, guide, elbo


def explain_loo_khat(idata: Any, loo: Any, params: Any, y: np.ndarray) -> dict[str, Any]:
    """Why PSIS-LOO flags some points, measured on this fit.

    ``svi_to_arviz`` records the pointwise log-likelihood :math:`\\log p(y_i \\mid z_i, \\mu,
    \\sigma)` at each draw's sampled assignment :math:`z_i`. Only :math:`y_i` informs
    :math:`z_i`, and the guide gives every point a small probability of every component: in the
    few draws where a point is assigned far away its likelihood drops by several nats, and
    those draws are a heavy tail of LOO importance ratios. The check: every flagged point has
    such a draw, and the LOO k-hats of the same draws with the assignment marginalised,
    :math:`\\log\\sum_k w_k N(y_i; \\mu_k, \\sigma^2)`, are small.
    """
    import jax
    from jax.scipy.special import logsumexp

    from numpyro_relax.diagnostics import pareto_khat

    def draws(group: str, name: str) -> np.ndarray:  # (chain * draw, ...), ArviZ 0.x and 1.x
        values = np.asarray(idata[group][name].values)
        return values.reshape((-1,) + values.shape[2:])

    khat = np.asarray(loo.pareto_k).ravel()
    loglik = draws("log_likelihood", "y")  # (S, n)
    num_draws = loglik.shape[0]
    good_k = min(1 - 1 / np.log10(num_draws), 0.7)  # ArviZ's threshold for S draws
    flagged = khat > good_k
    probs = np.asarray(jax.nn.softmax(params["assign_logits"], axis=-1))
    mode = probs.argmax(-1)
    off_mode = (draws("posterior", "z").argmax(-1) != mode).any(0)
    w, mu, sigma = (draws("posterior", n) for n in ("weights", "locs", "scale"))
    comp = -0.5 * ((y[None, :, None] - mu[:, None]) / sigma[:, None, None]) ** 2
    comp = comp - np.log(sigma)[:, None, None] - 0.5 * np.log(2 * np.pi)
    marginal = np.asarray(logsumexp(np.log(w)[:, None] + comp, axis=-1))  # (S, n)
    khat_marginal = pareto_khat(-marginal.T)  # LOO importance ratios 1 / p(y_i | draw)
    gap = np.median(loglik, 0) - loglik.min(0)
    return {
        "good_k": good_k,
        "flagged": int(flagged.sum()),
        "flagged_off_mode": int((flagged & off_mode).sum()),
        "flagged_confident": int((flagged & (probs.max(-1) > 0.99)).sum()),
        "gap_nats": float(np.median(gap[flagged])) if flagged.any() else 0.0,
        "khat_marginal": khat_marginal,
        "flagged_marginal": int((khat_marginal > good_k).sum()),
        "num_draws": num_draws,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Fit the mixture, convert it to ArviZ and save the plots.

    :return: ``{"params", "losses", "idata", "summary" (a DataFrame), "loo", "psis_khat",
        "loo_khat_explained", "assignment_accuracy", "pngs"}``; ``"loo_khat_explained"`` is the
        dictionary of :func:`explain_loo_khat`.
    """
    args = parse_args(argv)
    numpyro.set_platform(args.device)

    import arviz as az
    import jax
    import jax.numpy as jnp
    import optax
    from numpyro.infer import SVI
    from numpyro.optim import optax_to_numpyro

    from numpyro_relax.diagnostics import psis_khat, svi_to_arviz

    y_np, labels = simulate(args)
    y = jnp.asarray(y_np)
    temperature = jnp.float32(args.temperature)
    model, guide, elbo = build(args, y_np)
    svi = SVI(model, guide, optax_to_numpyro(optax.adam(args.lr)), loss=elbo)
    key = jax.random.PRNGKey(args.seed)
    k_fit, k_az, k_khat = jax.random.split(key, 3)
    result = svi.run(k_fit, args.steps, y, temperature, progress_bar=not args.no_progress)
    params = result.params
    losses = np.asarray(result.losses)

    k = len(args.locs)
    idata = svi_to_arviz(
        model,
        guide,
        params,
        y,
        temperature,
        key=k_az,
        num_samples=args.num_samples,
        num_chains=2,
        coords={"component": np.arange(k), "obs": np.arange(y_np.size)},
        dims={"weights": ["component"], "locs": ["component"], "y": ["obs"]},
    )
    summary = az.summary(idata, var_names=["weights", "locs", "scale"])
    with warnings.catch_warnings():
        # az.loo warns when some k-hat are high; we report them instead
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(idata, pointwise=True)
    khat = psis_khat(
        model, guide, params, y, temperature, key=k_khat, num_samples=args.khat_samples
    )

    # assignments: argmax of the guide's logits, components matched by their fitted locations
    order = np.argsort(np.asarray(params["locs_loc"]))
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)
    assigned = rank[np.argmax(np.asarray(params["assign_logits"]), axis=1)]
    true_rank = np.argsort(np.argsort(np.asarray(args.locs)))[labels]
    accuracy = float(np.mean(assigned == true_rank))

    print(f"{args.relaxation}: {args.steps} SVI steps, final loss {losses[-100:].mean():.1f}")
    print(summary.to_string())
    print(loo)
    why = explain_loo_khat(idata, loo, params, y_np)
    print(
        textwrap.fill(
            f"Why {why['flagged']} of {y_np.size} PSIS-LOO k-hats are above {why['good_k']:.2f}: "
            "the pointwise log-likelihood is taken at each draw's sampled assignment z_i, which "
            f"only y_i informs. {why['flagged_off_mode']} of the {why['flagged']} flagged points "
            f"were assigned, in at least one of the {why['num_draws']} draws, to a component "
            f"other than their most likely one, with a likelihood {why['gap_nats']:.1f} nats "
            "(median) below their usual one: a heavy tail of LOO importance ratios. "
            + (
                "Being between clusters is not what flags them: "
                if 2 * why["flagged_confident"] >= why["flagged"]
                else ""
            )
            + f"{why['flagged_confident']} of the {why['flagged']} have an assignment probability "
            "above 0.99. With z_i marginalised, log sum_k w_k N(y_i; mu_k, sigma), "
            f"the same draws give {why['flagged_marginal']} k-hats above {why['good_k']:.2f} "
            f"(max {why['khat_marginal'].max():.2f})"
            + (": LOO of the mixture itself is reliable." if not why["flagged_marginal"] else "."),
            width=100,
        )
    )
    verdict = (
        "below 0.7: the guide is a usable importance-sampling proposal for the joint posterior"
        if khat.khat < 0.7
        else "above 0.7: the mean-field guide fits the marginals but misses joint posterior mass"
    )
    print(
        f"assignment accuracy (argmax of the guide's logits): {accuracy:.1%}; "
        f"PSIS k-hat of the whole guide as an importance sampler: {khat.khat:.2f} ({verdict})"
    )

    pngs = [] if args.no_plots else save_plots(args, idata, loo, losses, y_np, params, why)
    if pngs:
        print(f"figures in {args.out_dir}: {', '.join(Path(p).name for p in pngs)}")
    return {
        "params": params,
        "losses": losses,
        "idata": idata,
        "summary": summary,
        "loo": loo,
        "psis_khat": khat.khat,
        "loo_khat_explained": why,
        "assignment_accuracy": accuracy,
        "pngs": pngs,
    }


def mark_marginal_khat(ax: Any, why: dict[str, Any]) -> None:
    """Add the k-hats with the assignment marginalised to ArviZ's k-hat plot."""
    from matplotlib.lines import Line2D

    khat = why["khat_marginal"]
    ax.scatter(np.arange(khat.size), khat, s=6, color="C2")
    ax.set_title("PSIS-LOO k-hat per data point")
    handles = [
        Line2D([], [], marker="+", ls="", color="C0", label="at the sampled assignment (az.loo)"),
        Line2D([], [], marker="o", ms=3, ls="", color="C2", label="assignment marginalised"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left")


def save_plots(
    args: argparse.Namespace,
    idata: Any,
    loo: Any,
    losses: np.ndarray,
    y: np.ndarray,
    params: Any,
    why: dict[str, Any],
) -> list[str]:
    """Posterior predictive check, posteriors of the globals, LOO k-hat and the fit, as PNGs."""
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = []

    def save(fig: Any, name: str) -> None:
        fig.savefig(out / name, dpi=100, bbox_inches="tight")
        plt.close(fig)
        saved.append(str(out / name))

    globals_ = ["weights", "locs", "scale"]
    if int(az.__version__.split(".")[0]) >= 1:
        # ArviZ 1.x (arviz_plots): the plots return a PlotCollection and are named anew
        pc = az.plot_ppc_dist(idata, num_samples=min(100, args.num_samples), backend="matplotlib")
        save(pc.get_viz("figure"), "ppc.png")
        fig = az.plot_dist(idata, var_names=globals_, backend="matplotlib").get_viz("figure")
        fig.set_layout_engine("constrained")  # else the titles overlap the row above
        save(fig, "posterior.png")
        pc = az.plot_khat(loo, visuals={"hlines": True}, backend="matplotlib")
        fig = pc.get_viz("figure")
        mark_marginal_khat(fig.axes[0], why)
        save(fig, "loo_khat.png")
    else:
        with warnings.catch_warnings():
            # ArviZ 0.2x passes matplotlib 3.11 an alias map it deprecates; not ours to fix
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="arviz")
            ax = az.plot_ppc(idata, num_pp_samples=100, random_seed=args.seed)
            save(np.ravel(ax)[0].figure, "ppc.png")
            axes = az.plot_posterior(idata, var_names=globals_)
            fig = np.ravel(axes)[0].figure
            for ax in np.ravel(axes):  # "locs\n0" -> "locs[0]": two-line titles hit the row above
                title = ax.get_title()
                if "\n" in title:
                    name, index = title.split("\n", 1)
                    size = ax.title.get_fontsize()
                    ax.set_title(f"{name}[{index.replace(chr(10), ', ')}]", fontsize=size)
            fig.set_layout_engine("constrained")
            save(fig, "posterior.png")
            ax = az.plot_khat(loo, show_hlines=True)
            mark_marginal_khat(ax, why)
            save(ax.figure, "loo_khat.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
    # linear axis (a symlog axis between two decades has no tick labels at all), the first steps'
    # spike clipped, and a running mean over full windows
    ax1.plot(losses, lw=0.4, color="C0", alpha=0.5, label="per step")
    window = max(1, min(50, losses.size // 10))
    running = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax1.plot(
        np.arange(running.size) + (window - 1) / 2, running, color="C0", label=f"mean of {window}"
    )
    low, high = np.percentile(losses, [0.5, 99])
    ax1.set_ylim(low - 0.05 * (high - low), high + 0.25 * (high - low))
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss (negative ELBO)")
    ax1.legend(fontsize=8)
    grid = np.linspace(y.min() - 1, y.max() + 1, 400)
    conc = np.asarray(params["weights_conc"])
    weights = conc / conc.sum()
    scale = float(np.exp(params["scale_loc"]))
    density = sum(
        w * norm.pdf(grid, m, scale)
        for w, m in zip(weights, np.asarray(params["locs_loc"]), strict=True)
    )
    ax2.hist(y, bins=40, density=True, color="0.8")
    ax2.plot(grid, density, color="C3", label="mixture at the guide's means")
    ax2.legend(fontsize=8)
    ax2.set_xlabel("y")
    save(fig, "fit.png")
    return saved


if __name__ == "__main__":
    main()
