"""The Laplace bridge: Dirichlet <-> logistic-normal, and closed-form predictive probabilities.

(a) On the 3-simplex, a Dirichlet, its two Laplace-bridge logistic-normals (the full covariance,
    :class:`~numpyro_relax.LogisticNormal`, and the paper's diagonal fast path,
    :class:`~numpyro_relax.LogisticNormalSoftmax`) and the Dirichlet bridged back, as density
    heatmaps on the triangle (``simplex_densities.png``). The round trip is exact.

(b) A Bayesian multiclass logistic regression on scikit-learn's digits (8x8 images, 64 standardised
    pixels, 10 classes, 75/25 stratified split), fitted with SVI and an ``AutoMultivariateNormal``
    guide over all 650 weights and biases (no PCA needed: one step costs well under a
    millisecond). The logits of a test image are linear in the weights, so the guide's Gaussian
    over weights gives a Gaussian over the 10 logits in closed form; the Laplace bridge turns it
    into a Dirichlet whose mean is the predictive distribution, with no sampling. The table
    compares it with Monte-Carlo softmax averaging over weight samples and the plug-in softmax of
    the mean logits: accuracy, expected calibration error (15 bins), NLL, the mean total
    variation distance to the Monte-Carlo predictive, and the wall time of one jit-compiled
    predictive pass over the test set (median of repeats). A reliability diagram is saved as
    ``reliability.png`` and the table as ``table.md``.

    The second table asks what the bridge's Dirichlet adds to its mean: each uncertainty
    score (one minus a method's confidence, or the bridge's precision
    :math:`\\alpha_0 = \\sum_k \\alpha_k`) ranks the method's own errors, and pixel-permuted test
    images (the same pixel statistics, no digit), against the correct and the real test images
    (AUROC; 0.5 is chance).

    What to expect (defaults, CPU): the bridge is two orders of magnitude cheaper than Monte
    Carlo, but its Dirichlet mean is not E[softmax(f)]: it is the plug-in softmax reweighted by
    :math:`1/\\sigma_k^2` (every :math:`\\alpha_k` scales as :math:`1/\\sigma_k^2`), so it does not
    move when all logit variances grow. Here its calibration and NLL are the plug-in mean's (ECE
    0.031 against 0.029, NLL 0.28 against 0.27), and only Monte-Carlo averaging lowers the NLL
    (0.14). That is the closed form of the paper, not a bug. What the bridge buys is the
    Dirichlet in closed form at a hundredth of Monte Carlo's cost (the logit variances are the
    cost; the plug-in mean has none): its precision tells pixel-permuted digits from real ones
    (AUROC 0.92; Monte-Carlo confidence 0.93, plug-in confidence 0.90), though for the model's
    own errors it is a weaker score than any confidence (0.69 against 0.87-0.93).

Usage::

    python examples/laplace_bridge.py
    python examples/laplace_bridge.py --steps 4000 --mc-samples 2000 --device gpu
"""

from __future__ import annotations

import argparse
import os
import textwrap
import time

import numpy as np
import numpyro

METHODS = ("laplace bridge", "monte carlo", "plug-in mean")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Laplace bridge: Dirichlet <-> logistic-normal on the simplex, and closed-form "
        "predictives for a Bayesian logistic regression on digits.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=2000, help="SVI steps")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    parser.add_argument("--prior-scale", type=float, default=1.0, help="prior sd of the weights")
    parser.add_argument(
        "--mc-samples", type=int, default=1000, help="weight samples for Monte-Carlo averaging"
    )
    parser.add_argument("--grid", type=int, default=150, help="triangle resolution of the plots")
    parser.add_argument("--timing-repeats", type=int, default=7, help="repeats for the timings")
    parser.add_argument("--seed", type=int, default=0, help="random seed (split, fit, samples)")
    parser.add_argument(
        "--device", choices=["cpu", "gpu"], default="cpu", help="JAX platform to run on"
    )
    parser.add_argument(
        "--out-dir", default="outputs/laplace_bridge", help="where the PNGs and table.md go"
    )
    parser.add_argument("--no-progress", action="store_true", help="no SVI progress bar")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.mc_samples < 1 or args.timing_repeats < 1 or args.grid < 10:
        parser.error("--steps, --mc-samples, --timing-repeats must be >= 1 and --grid >= 10")
    return args


# -- (a) densities on the triangle --------------------------------------------------------------


def _triangle_points(n: int) -> np.ndarray:
    """Barycentric points strictly inside the 3-simplex (a lattice of step 1/n, shifted inwards)."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = i + j < n - 1
    a = (i[keep] + 1 / 3) / n
    b = (j[keep] + 1 / 3) / n
    return np.stack([a, b, 1 - a - b], axis=-1)


VERTICES = ((-0.04, -0.04), (1.04, -0.04), (0.58, np.sqrt(3) / 2 - 0.02))


def simplex_figure(concentrations, grid: int, path: str):
    import jax
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.tri as mtri
    from numpyro.distributions import Dirichlet

    from numpyro_relax.laplace_bridge import laplace_bridge

    x = _triangle_points(grid)
    cart_x = x[:, 1] + 0.5 * x[:, 2]  # vertices: e1 -> (0, 0), e2 -> (1, 0), e3 -> (1/2, sqrt3/2)
    cart_y = np.sqrt(3) / 2 * x[:, 2]
    tri = mtri.Triangulation(cart_x, cart_y)
    columns = (
        "Dirichlet",
        "bridge: LogisticNormal",
        "bridge: LogisticNormalSoftmax",
        "bridged back",
    )
    fig, axes = plt.subplots(
        len(concentrations), 4, figsize=(13, 3.3 * len(concentrations)), squeeze=False
    )

    @jax.jit
    def densities(alpha, xs):  # one compiled program per figure row, not one per operation
        d = Dirichlet(alpha)
        full = laplace_bridge(d)
        diag = laplace_bridge(d, diagonal=True)
        back = laplace_bridge(full)
        dens = [jnp.exp(m.log_prob(xs)) for m in (d, full, diag, back)]
        err = jnp.maximum(
            jnp.max(jnp.abs(back.concentration / alpha - 1)),
            jnp.max(jnp.abs(laplace_bridge(diag).concentration / alpha - 1)),
        )
        return dens, err

    round_trip = 0.0
    for row, alpha in enumerate(concentrations):
        dens, err = densities(jnp.asarray(alpha, jnp.float32), jnp.asarray(x, jnp.float32))
        dens = [np.asarray(v) for v in dens]
        round_trip = max(round_trip, float(err))
        vmax = max(float(np.percentile(v, 99.5)) for v in dens)
        for col, (ax, values) in enumerate(zip(axes[row], dens, strict=True)):
            ax.tricontourf(tri, np.minimum(values, vmax), levels=30, vmin=0, vmax=vmax)
            ax.set_aspect("equal")
            ax.axis("off")
            ax.set_title(columns[col], fontsize=9)
            for (vx, vy), label in zip(VERTICES, ("x1", "x2", "x3"), strict=True):
                ax.annotate(
                    label, (vx, vy), fontsize=8, ha="center", va="center", annotation_clip=False
                )
        axes[row, 0].text(
            -0.12,
            0.5,
            f"alpha = {tuple(float(a) for a in alpha)}",
            rotation=90,
            va="center",
            ha="center",
            transform=axes[row, 0].transAxes,
            fontsize=9,
        )
    fig.suptitle("Laplace bridge on the 3-simplex (densities, shared colour scale per row)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return round_trip


# -- (b) digits ---------------------------------------------------------------------------------


def load_digits_split(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(
        data.data, data.target, test_size=0.25, random_state=seed, stratify=data.target
    )
    scaler = StandardScaler().fit(x_tr)
    return (
        scaler.transform(x_tr).astype(np.float32),
        scaler.transform(x_te).astype(np.float32),
        y_tr.astype(np.int32),
        y_te.astype(np.int32),
    )


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    conf = probs.max(-1)
    correct = probs.argmax(-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def reliability_figure(probs_by_method: dict, labels: np.ndarray, path: str, bins: int = 15):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
    edges = np.linspace(0.0, 1.0, bins + 1)
    for name, probs in probs_by_method.items():
        conf = probs.max(-1)
        correct = probs.argmax(-1) == labels
        xs, ys = [], []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            sel = (conf > lo) & (conf <= hi)
            if sel.sum() >= 3:
                xs.append(conf[sel].mean())
                ys.append(correct[sel].mean())
        ax.plot(xs, ys, "o-", ms=3, label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability on the digits test set")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    numpyro.set_platform(args.device)  # before any JAX work

    import jax
    import jax.numpy as jnp
    from jax import random
    from jax.scipy.special import logsumexp
    from numpyro import distributions as dist
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoMultivariateNormal
    from sklearn.metrics import roc_auc_score

    from numpyro_relax.laplace_bridge import gaussian_to_dirichlet

    os.makedirs(args.out_dir, exist_ok=True)

    # (a)
    png = os.path.join(args.out_dir, "simplex_densities.png")
    round_trip = simplex_figure([(2.0, 3.0, 6.0), (12.0, 8.0, 20.0)], args.grid, png)
    print(f"(a) Dirichlet -> logistic-normal -> Dirichlet: max relative error {round_trip:.1e}")
    print(f"saved {png}")

    # (b)
    x_tr, x_te, y_tr, y_te = load_digits_split(args.seed)
    n_feat, n_cls = x_tr.shape[1], 10
    n_par = (n_feat + 1) * n_cls

    def model(x, y=None):
        theta = numpyro.sample(
            "theta", dist.Normal(0.0, args.prior_scale).expand([n_par]).to_event(1)
        )
        w = theta.reshape(n_feat + 1, n_cls)  # rows: the 64 pixels, then the bias
        logits = x @ w[:-1] + w[-1]
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("y", dist.Categorical(logits=logits), obs=y)

    guide = AutoMultivariateNormal(model)
    svi = SVI(model, guide, numpyro.optim.Adam(args.lr), Trace_ELBO())
    t0 = time.perf_counter()
    # the model is fixed and valid: argument checks off for the fit (checking the guide's 650 x 650
    # scale_tril eagerly costs seconds of compilation on CPU and adds nothing here)
    with numpyro.validation_enabled(False):
        result = svi.run(
            random.PRNGKey(args.seed),
            args.steps,
            jnp.asarray(x_tr),
            jnp.asarray(y_tr),
            progress_bar=not args.no_progress,
        )
        fit_s = time.perf_counter() - t0
        posterior = guide.get_posterior(result.params)  # MultivariateNormal over theta
    loc, tril = posterior.loc, posterior.scale_tril
    print(
        f"(b) SVI, AutoMultivariateNormal over {n_par} weights: {args.steps} steps in {fit_s:.1f} s, "
        f"final ELBO loss {float(result.losses[-1]):.1f}"
    )

    x_te_tilde = jnp.concatenate([jnp.asarray(x_te), jnp.ones((x_te.shape[0], 1))], axis=1)

    def logit_moments(loc, tril, xt):
        """Mean and per-class variance of the logits x~ Theta under theta ~ N(loc, L L^T).

        Logit k of an input x~ is x~ . Theta[:, k], so its variance is x~^T S_k x~ with S_k the
        covariance of column k of Theta: a (65 x 65) block of L L^T, one per class.
        """
        mean = xt @ loc.reshape(n_feat + 1, n_cls)
        rows = tril.reshape(n_feat + 1, n_cls, n_par)
        blocks = jnp.einsum("dkp,ekp->kde", rows, rows)
        return mean, jnp.einsum("nd,kde,ne->nk", xt, blocks, xt)

    @jax.jit
    def bridge_predictive(loc, tril, xt):
        mean, var = logit_moments(loc, tril, xt)
        alpha = gaussian_to_dirichlet(mean, var)
        return jax.nn.softmax(jnp.log(alpha), axis=-1)  # the Dirichlet mean alpha / sum(alpha)

    @jax.jit
    def bridge_log_precision(loc, tril, xt):
        """log alpha_0 = log sum_k alpha_k: large for inputs the posterior is sure about."""
        mean, var = logit_moments(loc, tril, xt)
        return logsumexp(jnp.log(gaussian_to_dirichlet(mean, var)), axis=-1)

    @jax.jit
    def mc_predictive(loc, tril, xt, key):
        eps = random.normal(key, (args.mc_samples, n_par))
        thetas = (loc + eps @ tril.T).reshape(args.mc_samples, n_feat + 1, n_cls)
        logits = jnp.einsum("nd,sdk->snk", xt, thetas)
        return jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)

    @jax.jit
    def plugin_predictive(loc, tril, xt):
        return jax.nn.softmax(xt @ loc.reshape(n_feat + 1, n_cls), axis=-1)

    key = random.PRNGKey(args.seed + 1)
    fns = {
        "laplace bridge": lambda: bridge_predictive(loc, tril, x_te_tilde),
        "monte carlo": lambda: mc_predictive(loc, tril, x_te_tilde, key),
        "plug-in mean": lambda: plugin_predictive(loc, tril, x_te_tilde),
    }
    probs, times = {}, {}
    for name, fn in fns.items():
        probs[name] = np.asarray(fn().block_until_ready(), np.float64)  # compiles
        runs = []
        for _ in range(args.timing_repeats):
            t = time.perf_counter()
            fn().block_until_ready()
            runs.append(time.perf_counter() - t)
        times[name] = 1e3 * float(np.median(runs))

    rows = []
    for name in METHODS:
        p = probs[name]
        rows.append(
            {
                "method": name,
                "accuracy": float(np.mean(p.argmax(-1) == y_te)),
                "ece": expected_calibration_error(p, y_te),
                "nll": float(-np.mean(np.log(np.clip(p[np.arange(len(y_te)), y_te], 1e-12, None)))),
                "tv_to_mc": float(np.mean(0.5 * np.abs(p - probs["monte carlo"]).sum(-1))),
                "time_ms": times[name],
            }
        )
    header = (
        f"| {'method':<24} | accuracy | ECE    | NLL    | TV to MC | time (ms) |\n"
        f"|{'-' * 26}|----------|--------|--------|----------|-----------|"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"| {r['method']:<24} | {r['accuracy']:8.4f} | {r['ece']:.4f} | {r['nll']:.4f} | "
            f"{r['tv_to_mc']:8.4f} | {r['time_ms']:9.3f} |"
        )
    note = (
        f"\ndigits test set: {len(y_te)} images; Monte Carlo: {args.mc_samples} weight samples; "
        f"time: one jit-compiled pass, median of {args.timing_repeats}, device {args.device}."
    )

    # What the bridge's Dirichlet adds to its mean: an uncertainty score in closed form, its
    # precision alpha_0. Each score ranks the method's own errors, and pixel-permuted test images
    # (same pixel statistics, no digit), against the correct / real test images (AUROC, 0.5 is
    # chance, 1 a perfect ranking).
    rng = np.random.default_rng(args.seed)
    x_ood = np.stack([row[rng.permutation(row.size)] for row in x_te])
    x_ood_tilde = jnp.concatenate([jnp.asarray(x_ood), jnp.ones((x_ood.shape[0], 1))], axis=1)
    ood_probs = {
        "laplace bridge": bridge_predictive(loc, tril, x_ood_tilde),
        "monte carlo": mc_predictive(loc, tril, x_ood_tilde, key),
        "plug-in mean": plugin_predictive(loc, tril, x_ood_tilde),
    }
    log_precision = np.asarray(bridge_log_precision(loc, tril, x_te_tilde))
    log_precision_ood = np.asarray(bridge_log_precision(loc, tril, x_ood_tilde))
    for name, values in (("test", log_precision), ("pixel-permuted", log_precision_ood)):
        if not np.all(np.isfinite(values)):
            raise FloatingPointError(f"the bridge's precision is not finite on the {name} images")

    def auroc(uncertain_in, uncertain_out):
        labels = np.r_[np.zeros(uncertain_in.size), np.ones(uncertain_out.size)]
        return float(roc_auc_score(labels, np.r_[uncertain_in, uncertain_out]))

    def error_auroc(uncertainty, p):
        wrong = p.argmax(-1) != y_te
        return (
            auroc(uncertainty[~wrong], uncertainty[wrong])
            if 0 < wrong.sum() < wrong.size
            else float("nan")
        )

    scores = []
    for name, label in (
        ("plug-in mean", "plug-in confidence"),
        ("monte carlo", "monte carlo confidence"),
        ("laplace bridge", "bridge mean confidence"),
    ):
        unc, unc_ood = 1 - probs[name].max(-1), 1 - np.asarray(ood_probs[name]).max(-1)
        scores.append(
            {"score": label, "errors": error_auroc(unc, probs[name]), "ood": auroc(unc, unc_ood)}
        )
    scores.append(
        {
            "score": "bridge precision alpha_0",
            "errors": error_auroc(-log_precision, probs["laplace bridge"]),
            "ood": auroc(-log_precision, -log_precision_ood),
        }
    )
    score_lines = [
        f"| {'uncertainty score':<26} | errors (AUROC) | pixel-permuted digits (AUROC) |",
        f"|{'-' * 28}|----------------|-------------------------------|",
    ]
    for r in scores:
        score_lines.append(f"| {r['score']:<26} | {r['errors']:14.3f} | {r['ood']:29.3f} |")
    table = "\n".join(lines) + "\n" + note + "\n\n" + "\n".join(score_lines) + "\n"
    print(table)
    by_method = {r["method"]: r for r in rows}
    bridge, plugin, mc = (by_method[m] for m in ("laplace bridge", "plug-in mean", "monte carlo"))
    by_score = {r["score"]: r for r in scores}
    print(
        textwrap.fill(
            "How to read this: the bridge's Dirichlet mean is the plug-in softmax reweighted by "
            "1/sigma_k^2 (and, where the logit means are close, pulled towards weights "
            "proportional to 1/sigma_k^2); it is unchanged when all logit variances grow, so it does "
            "not temper a confident prediction for having large logit variances, so its "
            f"calibration and NLL are the plug-in mean's (ECE {bridge['ece']:.3f} vs "
            f"{plugin['ece']:.3f}, NLL {bridge['nll']:.3f} vs {plugin['nll']:.3f}), and only "
            f"averaging over weight samples lowers the NLL (Monte Carlo: {mc['nll']:.3f}). What "
            "the bridge buys is the Dirichlet itself, in closed form "
            f"({bridge['time_ms']:.2f} ms against {mc['time_ms']:.0f} ms for Monte Carlo; the "
            f"plug-in mean, {plugin['time_ms']:.2f} ms, carries no uncertainty): its "
            "precision alpha_0 tells pixel-permuted digits from real ones with AUROC "
            f"{by_score['bridge precision alpha_0']['ood']:.3f} (Monte-Carlo confidence "
            f"{by_score['monte carlo confidence']['ood']:.3f}, plug-in confidence "
            f"{by_score['plug-in confidence']['ood']:.3f}); for the model's own errors it is a "
            f"weaker score (AUROC {by_score['bridge precision alpha_0']['errors']:.3f}).",
            width=100,
        )
    )
    table_path = os.path.join(args.out_dir, "table.md")
    with open(table_path, "w") as f:
        f.write(table)
    rel_png = os.path.join(args.out_dir, "reliability.png")
    reliability_figure({m: probs[m] for m in METHODS}, y_te, rel_png, bins=10)
    print(f"saved {table_path} and {rel_png}")
    return {
        "png": png,
        "reliability_png": rel_png,
        "table_path": table_path,
        "table": table,
        "rows": rows,
        "scores": scores,
        "round_trip_error": round_trip,
        "fit_seconds": fit_s,
    }


if __name__ == "__main__":
    main()
