"""How fast can one step of Jang et al.'s categorical VAE run on this machine, at best?

``benchmarks/vae_torch_comparison.py`` times the whole training step on both sides. This script
times the parts of the step that no implementation can skip, each on its own, jitted and
``lax.scan``-ned over 100 steps as ``examples/vae.py`` runs:

* ``matmuls``: the 17 float32 matrix products of one step at batch 100 — 6 forward
  (784-512-256-200 encoder, 200-256-512-784 decoder), 6 weight gradients and the 5 input
  gradients backpropagation needs (none for the data), about 0.62 GFLOP — with a ``tanh``
  between layers and a plain gradient step so that nothing is optimised away;
* ``adam``: optax's Adam on the model's 1.17 million parameters;
* ``data``: drawing a batch of 100 training images and binarising them (one Bernoulli draw per
  pixel).

Their sum is a floor on the time of one step (the ELBO's element-wise work comes on top), so
``1 / floor`` is a ceiling on steps per second. Usage::

    python benchmarks/vae_step_floor.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

BATCH = 100
LAYERS = ((784, 512), (512, 256), (256, 200), (200, 256), (256, 512), (512, 784))
STEPS = 100


def matmul_flop() -> int:
    forward = sum(2 * BATCH * a * b for a, b in LAYERS)
    input_grads = sum(2 * BATCH * a * b for a, b in LAYERS[1:])
    return 2 * forward + input_grads  # forward + weight gradients + input gradients


def matmuls(weights: list[Any], x: Any) -> Any:
    def step(carry: Any, _: Any) -> tuple[Any, None]:
        weights, x = carry
        activations = [x]
        for w in weights:
            activations.append(jnp.tanh(activations[-1] @ w))
        delta, grads = activations[-1], []
        for i in reversed(range(len(weights))):
            grads.append(activations[i].T @ delta)
            if i > 0:
                delta = delta @ weights[i].T
        weights = [w - 1e-6 * g for w, g in zip(weights, reversed(grads), strict=True)]
        return (weights, x + 1e-6 * jnp.sum(delta)), None

    return jax.lax.scan(step, (weights, x), None, length=STEPS)[0]


def adam(params: list[Any]) -> Any:
    optimizer = optax.adam(1e-3)

    def step(carry: Any, i: Any) -> tuple[Any, None]:
        params, state = carry
        grads = jax.tree.map(lambda p: 1e-3 * p + i, params)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    return jax.lax.scan(step, (params, optimizer.init(params)), jnp.arange(STEPS, dtype=float))[0]


def data(key: Any, images: Any) -> Any:
    def step(total: Any, i: Any) -> tuple[Any, None]:
        k_index, k_binarize = jax.random.split(jax.random.fold_in(key, i))
        index = jax.random.randint(k_index, (BATCH,), 0, images.shape[0])
        x = jax.random.bernoulli(k_binarize, images[index]).astype(jnp.float32)
        return total + jnp.sum(x), None

    return jax.lax.scan(step, 0.0, jnp.arange(STEPS))[0]


def seconds_per_step(fn: Callable[..., Any], *args: Any, repeats: int) -> float:
    """Best of ``repeats`` timed calls (after one compiling call), per step."""
    jitted = jax.jit(fn)
    jax.block_until_ready(jitted(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(jitted(*args))
        best = min(best, time.perf_counter() - start)
    return best / STEPS


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per part; best kept")
    args = parser.parse_args(argv)

    keys = jax.random.split(jax.random.PRNGKey(0), len(LAYERS) + 2)
    weights = [0.03 * jax.random.normal(k, shape) for k, shape in zip(keys, LAYERS, strict=False)]
    params = [(w, jnp.zeros(w.shape[1])) for w in weights]
    x = jax.random.normal(keys[-2], (BATCH, LAYERS[0][0]))
    images = jax.random.uniform(keys[-1], (60000, LAYERS[0][0]))

    parts = {
        "matmuls": seconds_per_step(matmuls, weights, x, repeats=args.repeats),
        "adam": seconds_per_step(adam, params, repeats=args.repeats),
        "data": seconds_per_step(data, keys[-1], images, repeats=args.repeats),
    }
    floor = sum(parts.values())
    print(f"{jax.devices()[0].device_kind}, JAX {jax.__version__}")
    for name, seconds in parts.items():
        print(f"  {name:8s} {1e3 * seconds:6.2f} ms/step")
    print(f"  matmuls run at {matmul_flop() / parts['matmuls'] / 1e9:.0f} GFLOP/s")
    print(f"floor {1e3 * floor:.2f} ms/step -> at most {1 / floor:.0f} steps/s")
    return {**parts, "floor": floor}


if __name__ == "__main__":
    main()
