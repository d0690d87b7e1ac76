"""Gradient estimators for a discrete latent on the classic toy problem.

Minimise :math:`\\mathbb{E}_{b \\sim \\mathrm{Bernoulli}(\\sigma(\\theta))}[(b - 0.499)^2]` over the
logit :math:`\\theta` (Tucker et al. 2017) with every estimator of :mod:`numpyro_relax.estimators`.
The two outcomes differ by only 0.002 in cost, so the signal (the gradient is 0.0005 at
:math:`\\theta = 0`) is tiny compared to the noise of REINFORCE: the plot shows how each estimator's
variance evolves along its optimisation path, and the table reports the variance at
:math:`\\theta = 0` (theory: REINFORCE 0.015625, ARM 8.3e-8, DisARM 0) and the cost of one
estimate in microseconds (jit-compiled, ``block_until_ready``, median of repeats).

RELAX learns its surrogate (a REBAR-form term plus a small MLP) jointly with :math:`\\theta` by
descending the variance gradient from :func:`~numpyro_relax.estimators.relax_variance_grad`.

Usage::

    python examples/estimators.py --steps 2000 --num-samples 1
    python examples/estimators.py --device gpu --out-dir outputs/estimators
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial

import numpyro

ESTIMATORS = (
    "reinforce",
    "reinforce_loo",
    "arm",
    "disarm",
    "arsm",
    "rebar",
    "relax",
    "gumbel_softmax",
    "straight_through",
)
TARGET = 0.499


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare gradient estimators on min_theta E[(b - 0.499)^2], b ~ Bern(sigmoid(theta)).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=2000, help="optimisation steps")
    parser.add_argument(
        "--num-samples",
        type=int,
        default=2,
        help="samples per gradient estimate (pairs for ARM/DisARM; >= 2 for the LOO baseline)",
    )
    parser.add_argument(
        "--var-samples",
        type=int,
        default=256,
        help="independent estimates per step used to measure the gradient variance",
    )
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate for the logit")
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.5,
        help="relaxation temperature of REBAR, Gumbel-softmax and straight-through",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--device", choices=["cpu", "gpu"], default="cpu", help="JAX platform to run on"
    )
    parser.add_argument(
        "--out-dir", default="outputs/estimators", help="where estimators.png is written"
    )
    parser.add_argument(
        "--estimators",
        default=",".join(ESTIMATORS),
        help="comma-separated subset of the estimators to run",
    )
    parser.add_argument(
        "--timing-repeats", type=int, default=7, help="repeats for the timing of one estimate"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (one line per estimator)"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.estimators.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ESTIMATORS))
    if unknown or not names:
        parser.error(f"--estimators: unknown {unknown}; choose from {', '.join(ESTIMATORS)}")
    if args.num_samples < 1 or ("reinforce_loo" in names and args.num_samples < 2):
        parser.error("--num-samples must be >= 1 (>= 2 with reinforce_loo)")
    if args.steps < 1 or args.var_samples < 2 or args.timing_repeats < 1:
        parser.error("--steps, --timing-repeats must be >= 1 and --var-samples >= 2")
    args.estimators = names
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    numpyro.set_platform(args.device)  # before any JAX work

    import jax
    import jax.numpy as jnp
    import matplotlib
    import numpy as np
    import optax
    from tqdm import tqdm

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from numpyro_relax import estimators as est

    def f(b):
        return jnp.sum((b - TARGET) ** 2)

    def exact_loss(theta):
        p = jax.nn.sigmoid(theta[0])
        return p * (1 - TARGET) ** 2 + (1 - p) * TARGET**2

    n, tau = args.num_samples, args.temperature

    def surrogate(params, z):
        """REBAR-form control variate plus a small MLP on the logit-space relaxation."""
        relaxed = jax.nn.sigmoid(z / jnp.exp(params["log_temperature"]))
        h = jnp.tanh(z[:, None] * params["w1"] + params["b1"])
        return params["eta"] * f(relaxed) + jnp.sum(h @ params["w2"])

    surrogate_init = {
        "eta": jnp.array(1.0),
        "log_temperature": jnp.log(jnp.array(tau)),
        "w1": 0.1 * jax.random.normal(jax.random.PRNGKey(1), (1, 8)),
        "b1": jnp.zeros(8),
        "w2": jnp.zeros(8),
    }

    plain = {
        "reinforce": partial(est.reinforce, f, num_samples=n),
        "reinforce_loo": partial(est.reinforce, f, num_samples=n, baseline="loo"),
        "arm": partial(est.arm, f, num_samples=n),
        "disarm": partial(est.disarm, f, num_samples=n),
        "arsm": partial(est.arsm, f, family="bernoulli", num_samples=n),
        "rebar": partial(est.rebar, f, num_samples=n, temperature=tau),
        "gumbel_softmax": partial(est.gumbel_softmax, f, num_samples=n, temperature=tau),
        "straight_through": partial(est.straight_through, f, num_samples=n, temperature=tau),
    }

    def relax_fn(theta, key, params):
        return est.relax(f, theta, key, num_samples=n, surrogate=surrogate, surrogate_params=params)

    opt = optax.adam(args.lr)
    opt_phi = optax.adam(1e-2)

    def run(name, key):
        """lax.scan over steps: the variance of `var_samples` estimates, then an Adam step."""
        theta0 = jnp.zeros(1)

        def estimates(theta, key, phi):
            keys = jax.random.split(key, args.var_samples)
            if name == "relax":
                return jax.vmap(lambda k: relax_fn(theta, k, phi))(keys)[1][:, 0]
            return jax.vmap(lambda k: plain[name](theta, k))(keys)[1][:, 0]

        def step(carry, key):
            theta, opt_state, phi, phi_state = carry
            k_var, k_step = jax.random.split(key)
            variance = jnp.var(estimates(theta, k_var, phi), ddof=1)
            if name == "relax":
                _, g, g_phi = est.relax_variance_grad(
                    f, theta, k_step, num_samples=n, surrogate=surrogate, surrogate_params=phi
                )
                updates, phi_state = opt_phi.update(g_phi, phi_state)
                phi = optax.apply_updates(phi, updates)
            else:
                _, g = plain[name](theta, k_step)
            updates, opt_state = opt.update(g, opt_state)
            theta = optax.apply_updates(theta, updates)
            return (theta, opt_state, phi, phi_state), (variance, theta[0], exact_loss(theta))

        carry = (theta0, opt.init(theta0), surrogate_init, opt_phi.init(surrogate_init))
        _, (variance, thetas, losses) = jax.lax.scan(step, carry, jax.random.split(key, args.steps))
        return variance, thetas, losses

    def time_one(name):
        """Median microseconds of one jit-compiled estimate at theta = 0."""
        if name == "relax":
            fn = jax.jit(lambda theta, key: relax_fn(theta, key, surrogate_init))
        else:
            fn = jax.jit(plain[name])
        theta, key = jnp.zeros(1), jax.random.PRNGKey(args.seed)
        jax.block_until_ready(fn(theta, key))  # compile
        number, times = 20, []
        for _ in range(args.timing_repeats):
            start = time.perf_counter()
            for _ in range(number):
                out = fn(theta, key)
            jax.block_until_ready(out)
            times.append((time.perf_counter() - start) / number)
        return 1e6 * float(np.median(times))

    results = {}
    key = jax.random.PRNGKey(args.seed)
    # each estimator's whole run is one compiled lax.scan (a few seconds): the bar counts them
    progress = tqdm(args.estimators, desc="estimators", unit="run", disable=args.no_progress)
    for name in progress:
        progress.set_postfix_str(name)
        key, k_run = jax.random.split(key)
        variance, thetas, losses = jax.jit(partial(run, name))(k_run)
        results[name] = {
            "variance": np.asarray(variance),
            "theta": np.asarray(thetas),
            "loss": np.asarray(losses),
            "us_per_estimate": time_one(name),
        }

    os.makedirs(args.out_dir, exist_ok=True)
    fig, (ax_var, ax_loss) = plt.subplots(1, 2, figsize=(12, 4.5))
    steps = np.arange(1, args.steps + 1)
    window = max(1, args.steps // 100)  # moving average of the per-step variance estimates
    for name, r in results.items():
        style = "--" if name in ("gumbel_softmax", "straight_through") else "-"
        # full windows only ("valid"), plotted at their centres: a "same" convolution pads with
        # zeros and bends both ends down
        smooth = np.convolve(r["variance"], np.ones(window) / window, mode="valid")
        centres = steps[(window - 1) // 2 : (window - 1) // 2 + smooth.size]
        # DisARM's variance is exactly 0 at theta = 0: clip for the log scale
        ax_var.plot(centres, np.maximum(smooth, 1e-16), style, label=name, lw=1)
        ax_loss.plot(steps, r["loss"] - TARGET**2, style, label=name, lw=1)
    ax_var.set(
        xlabel="iteration",
        ylabel="gradient variance",
        yscale="log",
        title=f"variance of one estimate ({n} sample(s); moving average over {window})",
    )
    ax_loss.set(
        xlabel="iteration",
        ylabel="E[f(b)] - min",
        yscale="log",
        title="excess loss (exact)",
    )
    ax_var.legend(fontsize=8)
    fig.tight_layout()
    png = os.path.join(args.out_dir, "estimators.png")
    fig.savefig(png, dpi=120)
    plt.close(fig)

    # variance of one estimate times num_samples: the per-sample (per-pair) variance
    header = (
        f"{'estimator':<18}{'n*var@theta=0':>15}{'n*var final':>13}{'final theta':>13}"
        f"{'us/estimate':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(
            f"{name:<18}{n * r['variance'][0]:>15.4g}{n * r['variance'][-1]:>13.4g}"
            f"{r['theta'][-1]:>13.3f}{r['us_per_estimate']:>13.1f}"
        )
    # what the numbers mean, for a reader who has not met this problem before
    g0 = float(jax.grad(exact_loss)(jnp.zeros(1))[0])
    gap = (1 - TARGET) ** 2 - TARGET**2
    print(
        f"How to read this: the exact gradient at theta = 0 is only {g0:.1e} (b = 1 costs {gap:.3f} "
        f"more than b = 0, so the best theta is -inf and a lower final theta is better).\n"
        f"  An unbiased estimator whose n*var is far above the squared gradient ({g0**2:.1e}) "
        "mostly sees noise and moves theta slowly: REINFORCE (theory 1/64 at theta = 0) against "
        "ARM (8.3e-8), DisARM (0) and the LOO baseline.\n"
        "  REBAR's fixed control variate (eta = 1 at --temperature) does not fit this f, so its "
        "variance stays at REINFORCE's level; RELAX learns its surrogate and its variance falls "
        "along the run.\n"
        "  gumbel_softmax and straight_through are biased (pathwise through a relaxation): their "
        "mean is not the gradient of E[f(b)], so their theta need not approach the optimum."
    )
    print(f"saved {png}")
    return {"png": png, "results": results}


if __name__ == "__main__":
    main()
