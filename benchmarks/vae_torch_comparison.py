"""Jang et al.'s categorical VAE: plain PyTorch (``F.gumbel_softmax``) vs ``examples/vae.py``.

Both sides train the same model — 20 categorical latents with 10 categories, a uniform prior,
784-512-256 encoder and 256-512-784 decoder MLPs (ReLU), a Bernoulli decoder — on dynamically
binarised Fashion-MNIST (``numpyro_relax.datasets``), batch 100, Adam 1e-3, temperature
``max(0.5, exp(-3e-5 step))``, the same number of steps, and are scored the same way: the
test-set negative ELBO with one hard one-hot :math:`z \\sim q(z \\mid x)` and the exact
categorical KL, on the same fixed binarisation of the test images.

The objectives are each side's usual one:

* PyTorch (``--torch-objective jang``, the default): Jang et al.'s code — the decoder sees
  ``F.gumbel_softmax(logits, tau)``, the KL term is the categorical KL of ``softmax(logits)`` to
  the uniform prior. ``--torch-objective relaxed`` uses Maddison et al.'s relaxed KL instead
  (``torch.distributions.ExpRelaxedCategorical`` for posterior and prior), the objective of
  ``examples/vae.py --relax``.
* ours: ``examples/vae.py --relax`` (``--ours-kl discrete``: ``--relax --kl discrete``, Jang et
  al.'s objective; ``--ours-estimator NAME``: the discrete model with that estimator instead),
  NumPyro SVI with the whole update jitted and ``lax.scan`` over chunks of steps.

Both sides start from the same initial law: the PyTorch layers are initialised as ``stax.Dense``
initialises the example's (truncated-normal Glorot weights, :math:`N(0, 10^{-12})` biases).

Steps per second exclude compilation (ours is compiled ahead of time) and evaluation; the torch
loop includes its per-step batch sampling, as ours does. Runs alternate (torch, ours, torch,
ours, ...) in ``--rounds`` rounds of ``--steps / --rounds`` timed steps each, so that a change
in machine load hits both sides alike; the reported rate is total steps over total time.

Usage (torch is a bench extra: ``pip install torch==2.13.0``, the CPU wheel)::

    python benchmarks/vae_torch_comparison.py --steps 5000
    python benchmarks/vae_torch_comparison.py --steps 1000 --max-test 2000
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NUM_LATENTS, NUM_CATEGORIES = 20, 10
HIDDEN = (512, 256)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="training steps for each side")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternate the two sides this many times"
    )
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--max-test", type=int, default=None, help="first N test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: whichever of 1 and 2 is faster in a short trial)",
    )
    parser.add_argument("--torch-objective", choices=("jang", "relaxed"), default="jang")
    parser.add_argument(
        "--ours-kl",
        choices=("relaxed", "discrete"),
        default="relaxed",
        help="examples/vae.py --relax --kl: relaxed (Maddison) or discrete (Jang's objective)",
    )
    parser.add_argument(
        "--ours-estimator",
        default=None,
        help="fit the discrete model with examples/vae.py --estimator NAME instead of --relax",
    )
    parser.add_argument("--log-every", type=int, default=100, help="ours: steps per jitted chunk")
    parser.add_argument("--out", default=None, help="append the Markdown table to this file")
    args = parser.parse_args(argv)
    if args.steps < args.rounds or args.rounds < 1:
        parser.error("--steps must be at least --rounds >= 1")
    return args


def temperature(step: int) -> float:
    return max(0.5, math.exp(-3e-5 * step))


# --------------------------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------------------------


class TorchVAE:
    """Jang et al.'s categorical VAE in plain PyTorch."""

    def __init__(self, data_dim: int, objective: str, lr: float, seed: int) -> None:
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.torch = torch
        self.objective = objective
        h1, h2 = HIDDEN
        self.encoder = nn.Sequential(
            nn.Linear(data_dim, h1),
            nn.ReLU(),
            nn.Linear(h1, h2),
            nn.ReLU(),
            nn.Linear(h2, NUM_LATENTS * NUM_CATEGORIES),
        )
        self.decoder = nn.Sequential(
            nn.Linear(NUM_LATENTS * NUM_CATEGORIES, h2),
            nn.ReLU(),
            nn.Linear(h2, h1),
            nn.ReLU(),
            nn.Linear(h1, data_dim),
        )
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        with (
            torch.no_grad()
        ):  # as stax.Dense: glorot_normal (truncated) weights, N(0, 1e-6^2) biases
            for layer in [*self.encoder, *self.decoder]:
                if isinstance(layer, nn.Linear):
                    fan_out, fan_in = layer.weight.shape
                    std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
                    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
                    nn.init.normal_(layer.bias, std=1e-6)
        self.opt = torch.optim.Adam(params, lr=lr)

    def loss(self, x: Any, tau: float) -> Any:
        torch = self.torch
        F = torch.nn.functional
        logits = self.encoder(x).view(-1, NUM_LATENTS, NUM_CATEGORIES)
        if self.objective == "jang":
            z = F.gumbel_softmax(logits, tau=tau, hard=False, dim=-1)
            log_q = F.log_softmax(logits, dim=-1)
            kl = torch.sum(log_q.exp() * (log_q + math.log(NUM_CATEGORIES)), dim=(1, 2))
        else:
            from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

            t = torch.tensor(tau)
            q = ExpRelaxedCategorical(t, logits=logits)
            p = ExpRelaxedCategorical(t, logits=torch.zeros_like(logits))
            y = q.rsample()
            kl = torch.sum(q.log_prob(y) - p.log_prob(y), dim=1)
            z = y.exp()
        rec_logits = self.decoder(z.reshape(-1, NUM_LATENTS * NUM_CATEGORIES))
        rec = -F.binary_cross_entropy_with_logits(rec_logits, x, reduction="none").sum(-1)
        return torch.mean(kl - rec)

    def train(self, x_train: Any, start: int, steps: int, batch: int, gen: Any) -> np.ndarray:
        torch = self.torch
        losses = np.empty(steps)
        for i in range(steps):
            idx = torch.randint(0, x_train.shape[0], (batch,), generator=gen)
            xb = torch.bernoulli(x_train[idx], generator=gen)
            loss = self.loss(xb, temperature(start + i))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            losses[i] = loss.item()  # as most PyTorch loops do; about 1% of a step here
        return losses

    def test_nelbo(self, x_test: np.ndarray, seed: int) -> tuple[float, float]:
        """Mean test NELBO (one hard one-hot z from q, exact KL) and its standard error."""
        torch = self.torch
        F = torch.nn.functional
        gen = torch.Generator().manual_seed(seed)
        values = []
        with torch.no_grad():
            for start in range(0, x_test.shape[0], 1000):
                x = torch.from_numpy(x_test[start : start + 1000])
                logits = self.encoder(x).view(-1, NUM_LATENTS, NUM_CATEGORIES)
                log_q = F.log_softmax(logits, dim=-1)
                idx = torch.multinomial(log_q.exp().view(-1, NUM_CATEGORIES), 1, generator=gen)
                z = F.one_hot(idx.view(-1, NUM_LATENTS), NUM_CATEGORIES).float()
                rec_logits = self.decoder(z.view(-1, NUM_LATENTS * NUM_CATEGORIES))
                rec = -F.binary_cross_entropy_with_logits(rec_logits, x, reduction="none").sum(-1)
                kl = torch.sum(log_q.exp() * (log_q + math.log(NUM_CATEGORIES)), dim=(1, 2))
                values.append((kl - rec).numpy())
        values = np.concatenate(values)
        return float(values.mean()), float(values.std() / math.sqrt(values.size))


# --------------------------------------------------------------------------------------------
# ours (examples/vae.py), with its training loop split into timed rounds
# --------------------------------------------------------------------------------------------


def load_vae_example() -> Any:
    name = "example_vae"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "vae.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class Ours:
    """``examples/vae.py``'s model, guide, loss, schedules and evaluation, trained in rounds."""

    def __init__(self, args: argparse.Namespace, x_train: np.ndarray, x_test: np.ndarray) -> None:
        import jax
        import jax.numpy as jnp
        import optax
        from numpyro.infer import SVI
        from numpyro.optim import optax_to_numpyro

        from numpyro_relax.datasets import sample_batch

        self.vae = load_vae_example()
        how = ["--estimator", args.ours_estimator] if args.ours_estimator else ["--relax"]
        self.args = self.vae.parse_args(
            how
            + [
                "--kl",
                args.ours_kl,
                "--dataset",
                args.dataset,
                "--hidden",
                ",".join(map(str, HIDDEN)),
            ]
            + [
                "--batch-size",
                str(args.batch_size),
                "--lr",
                str(args.lr),
                "--steps",
                str(args.steps),
            ]
            + ["--seed", str(args.seed), "--log-every", str(args.log_every), "--no-progress"]
        )
        self.model, self.guide, train_model, train_guide, elbo = self.vae.make_vae(
            self.args, x_train.shape[1]
        )
        temperature, _ = self.vae.schedules(self.args)
        svi = SVI(train_model, train_guide, optax_to_numpyro(optax.adam(args.lr)), loss=elbo)
        k_init, k_data, k_first = jax.random.split(jax.random.PRNGKey(args.seed), 3)
        batch = args.batch_size
        self.x_train = jnp.asarray(x_train)
        self.state = svi.init(
            k_init, sample_batch(k_first, self.x_train, batch, binarize=True), temperature(0)
        )

        def run_chunk(state: Any, x_train: Any, steps: Any) -> tuple[Any, Any]:
            def body(state: Any, step: Any) -> tuple[Any, Any]:
                xb = sample_batch(jax.random.fold_in(k_data, step), x_train, batch, binarize=True)
                state, loss = svi.update(state, xb, temperature(step))
                return state, loss / batch

            return jax.lax.scan(body, state, steps)

        self.jitted = jax.jit(run_chunk, donate_argnums=(0,))
        self.compiled: dict[int, Any] = {}
        self.svi = svi
        self.x_test = x_test
        self.jnp = jnp

    @property
    def objective(self) -> str:
        if self.args.relax:
            return "jang" if self.args.kl == "discrete" else "relaxed"
        return f"discrete, {self.args.estimator}"

    def train(self, start: int, steps: int) -> tuple[np.ndarray, float]:
        """Run ``steps`` steps from ``start``; returns (losses, seconds without compilation)."""
        jnp = self.jnp
        chunk = self.args.log_every
        sizes = [chunk] * (steps // chunk) + ([steps % chunk] if steps % chunk else [])
        for n in set(sizes):
            if n not in self.compiled:
                self.compiled[n] = self.jitted.lower(
                    self.state, self.x_train, jnp.arange(n)
                ).compile()
        losses = []
        t0 = time.perf_counter()
        done = start
        for n in sizes:
            self.state, chunk_losses = self.compiled[n](
                self.state, self.x_train, jnp.arange(done, done + n)
            )
            losses.append(np.asarray(chunk_losses))  # host sync, as the example's progress bar
            done += n
        return np.concatenate(losses), time.perf_counter() - t0

    def test_nelbo(self, seed: int) -> dict[str, float]:
        import jax

        params = self.svi.get_params(self.state)
        key = jax.random.PRNGKey(seed)
        return self.vae.evaluate(self.args, self.model, self.guide, params, self.x_test, key)


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import numpyro

    numpyro.set_platform("cpu")
    import jax
    import torch

    from numpyro_relax.datasets import load_dataset

    train_set = load_dataset(args.dataset, split="train", seed=args.seed)
    test_set = load_dataset(args.dataset, split="test", seed=args.seed)
    x_test = test_set.x[: args.max_test] if args.max_test else test_set.x
    # one fixed binarisation of the test images, shared by both sides (as examples/vae.py)
    x_test = np.asarray(
        jax.random.bernoulli(jax.random.split(jax.random.PRNGKey(args.seed), 5)[1], x_test),
        np.float32,
    )

    x_train_t = torch.from_numpy(train_set.x)
    if args.threads:
        torch.set_num_threads(args.threads)
    else:  # on a busy machine torch's spinning worker threads can make 2 threads much slower
        trial = TorchVAE(train_set.num_features, args.torch_objective, args.lr, args.seed)
        rates = {}
        for threads in (1, 2, 1, 2):
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            trial.train(x_train_t, 0, 20, args.batch_size, torch.Generator().manual_seed(0))
            rates[threads] = max(rates.get(threads, 0.0), 20 / (time.perf_counter() - t0))
        torch.set_num_threads(max(rates, key=rates.get))
        print(f"torch trial steps/s by thread count: {rates}; using {torch.get_num_threads()}")
    torch_vae = TorchVAE(train_set.num_features, args.torch_objective, args.lr, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    ours = Ours(args, train_set.x, x_test)
    per_round = [args.steps // args.rounds] * args.rounds
    per_round[-1] += args.steps - sum(per_round)

    torch_time = ours_time = 0.0
    torch_losses, ours_losses = [], []
    done = 0
    for r, n in enumerate(per_round):
        t0 = time.perf_counter()
        torch_losses.append(torch_vae.train(x_train_t, done, n, args.batch_size, gen))
        torch_time += time.perf_counter() - t0
        losses, seconds = ours.train(done, n)
        ours_losses.append(losses)
        ours_time += seconds
        done += n
        print(
            f"round {r + 1}/{args.rounds}: step {done}, torch {n / (time.perf_counter() - t0 - seconds):.1f} "
            f"steps/s (loss {torch_losses[-1][-50:].mean():.1f}), ours {n / seconds:.1f} steps/s "
            f"(loss {losses[-50:].mean():.1f})",
            flush=True,
        )

    torch_nelbo, torch_se = torch_vae.test_nelbo(x_test, args.seed)
    ours_eval = ours.test_nelbo(args.seed)
    result = {
        "steps": args.steps,
        "torch_steps_per_second": args.steps / torch_time,
        "ours_steps_per_second": args.steps / ours_time,
        "speedup": torch_time / ours_time,
        "torch_test_nelbo": torch_nelbo,
        "torch_test_nelbo_se": torch_se,
        "ours_test_nelbo": ours_eval["test_nelbo"],
        "ours_test_nelbo_se": ours_eval["test_nelbo_se"],
        "ours_test_iwae_nll": ours_eval["test_iwae_nll"],
        "torch_final_loss": float(np.concatenate(torch_losses)[-100:].mean()),
        "ours_final_loss": float(np.concatenate(ours_losses)[-100:].mean()),
        "test_images": int(x_test.shape[0]),
        "torch_threads": torch.get_num_threads(),
    }
    ours_flags = (
        ["--estimator", args.ours_estimator]
        if args.ours_estimator
        else ["--relax", "--kl", args.ours_kl]
    )
    torch_api = (
        "`F.gumbel_softmax`" if args.torch_objective == "jang" else "`ExpRelaxedCategorical`"
    )
    table = (
        f"| side | objective | steps | steps/s | test NELBO (hard z, ± s.e.) | final train loss |\n"
        f"|---|---|---:|---:|---:|---:|\n"
        f"| PyTorch {torch.__version__} ({torch_api}, {result['torch_threads']} threads) "
        f"| {args.torch_objective} | {args.steps} | {result['torch_steps_per_second']:.1f} "
        f"| {torch_nelbo:.1f} ± {torch_se:.1f} | {result['torch_final_loss']:.1f} |\n"
        f"| numpyro-relax (`examples/vae.py {' '.join(ours_flags)}`) | "
        f"{ours.objective} | {args.steps} | {result['ours_steps_per_second']:.1f} | "
        f"{result['ours_test_nelbo']:.1f} ± {result['ours_test_nelbo_se']:.1f} | "
        f"{result['ours_final_loss']:.1f} |\n"
    )
    print()
    print(table)
    print(
        f"speed-up {result['speedup']:.2f}x; ours: -IWAE(100) {result['ours_test_iwae_nll']:.1f}; "
        f"{result['test_images']} test images"
    )
    if args.out:
        with open(args.out, "a") as f:
            f.write(table + "\n")
    return result


if __name__ == "__main__":
    main()
