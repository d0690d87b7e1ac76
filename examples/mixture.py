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
the whole guide as an importance sampler (with hundreds of local assignments this is expected to
be large: a mean-field guide is a good fit of the marginals, not a good proposal for the joint
posterior).

Usage::

    python examples/mixture.py
    python examples/mixture.py --relaxation reinforce-loo --particles 8
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpyro

from numpyro_relax.infer import StraightThrough_ELBO, TraceLOO_ELBO

RELAXATIONS = ("st-gumbel-softmax",) + (("reinforce-loo",) if TraceLOO_ELBO else ())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--relaxation", choices=RELAXATIONS, default="st-gumbel-softmax")
    parser.add_argument("--num-data", type=int, default=300)
    parser.add_argument(
        "--locs",
        default="-3,0,3",
        help="comma-separated true component locations (K = their number)",
    )
    parser.add_argument("--true-scale", type=float, default=0.7)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument(
        "--particles",
        type=int,
        default=None,
        help="ELBO particles (default 1; 4 for reinforce-loo)",
    )
    parser.add_argument("--num-samples", type=int, default=400, help="guide draws for ArviZ")
    parser.add_argument("--khat-samples", type=int, default=1000, help="draws for psis_khat")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--out-dir", default="outputs/mixture")
    parser.add_argument("--no-plots", action="store_true")
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Fit the mixture, convert it to ArviZ and save the plots.

    :return: ``{"params", "losses", "summary" (a DataFrame), "loo", "psis_khat",
        "assignment_accuracy", "pngs"}``.
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
    result = svi.run(k_fit, args.steps, y, temperature, progress_bar=False)
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
    print(
        f"assignment accuracy (argmax of the guide's logits): {accuracy:.1%}; "
        f"PSIS k-hat of the whole guide as an importance sampler: {khat.khat:.2f}"
    )

    pngs = [] if args.no_plots else save_plots(args, idata, loo, losses, y_np, params)
    if pngs:
        print(f"figures in {args.out_dir}: {', '.join(Path(p).name for p in pngs)}")
    return {
        "params": params,
        "losses": losses,
        "idata": idata,
        "summary": summary,
        "loo": loo,
        "psis_khat": khat.khat,
        "assignment_accuracy": accuracy,
        "pngs": pngs,
    }


def save_plots(
    args: argparse.Namespace, idata: Any, loo: Any, losses: np.ndarray, y: np.ndarray, params: Any
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
        fig.axes[0].set_title("PSIS-LOO k-hat per data point")
        save(fig, "loo_khat.png")
    else:
        with warnings.catch_warnings():
            # ArviZ 0.2x passes matplotlib 3.11 an alias map it deprecates; not ours to fix
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="arviz")
            ax = az.plot_ppc(idata, num_pp_samples=100, random_seed=args.seed)
            save(np.ravel(ax)[0].figure, "ppc.png")
            axes = az.plot_posterior(idata, var_names=globals_)
            save(np.ravel(axes)[0].figure, "posterior.png")
            ax = az.plot_khat(loo, show_hlines=True)
            ax.set_title("PSIS-LOO k-hat per data point")
            save(ax.figure, "loo_khat.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.plot(losses, lw=0.5)
    ax1.set_yscale("symlog")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss (negative ELBO)")
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
