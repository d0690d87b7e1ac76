"""numpyro_relax.infer.sharding: SVI with the data batch and the particles sharded over 4 (forced)
CPU devices gives the single-device loss and gradient, from a program that really is sharded.

The multi-device checks run in one subprocess, because the number of CPU devices is fixed when
JAX starts (``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before ``import jax``)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from numpyro_relax.infer.sharding import device_mesh, replicate, shard_batch, sharded_particles

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, os
    os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + \\
        " --xla_force_host_platform_device_count=4"
    import jax, jax.numpy as jnp, numpy as np, numpyro, numpyro.distributions as dist, optax
    from numpyro.infer import SVI
    from numpyro.optim import optax_to_numpyro
    from numpyro_relax.infer import TraceDiscrete_ELBO
    from numpyro_relax.infer.sharding import (
        device_mesh, replicate, shard_batch, sharded_particles)

    B, D, K = 8, 3, 2
    x = jax.random.normal(jax.random.PRNGKey(1), (B, D))

    def model(x):  # bits per data point, a Normal likelihood through a learned decoder
        a = numpyro.param("a", 0.3 * jnp.ones((K, D)))
        with numpyro.plate("data", x.shape[0]):
            z = numpyro.sample("z", dist.Bernoulli(0.3 * jnp.ones(K)).to_event(1))
            numpyro.sample("x", dist.Normal(z @ a, 1.0).to_event(1), obs=x)

    def guide(x):  # amortised: the parameters do not grow with the batch
        w = numpyro.param("w", 0.1 * jnp.arange(D * K, dtype=jnp.float32).reshape(D, K))
        b = numpyro.param("b", jnp.array([0.2, -0.4]))
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("z", dist.Bernoulli(logits=x @ w + b).to_event(1))

    params = {"a": 0.3 * jnp.ones((K, D)), "b": jnp.array([0.2, -0.4]),
              "w": 0.1 * jnp.arange(D * K, dtype=jnp.float32).reshape(D, K)}
    key = jax.random.PRNGKey(7)

    def value_and_grad(elbo):
        return jax.jit(jax.value_and_grad(lambda p, x: elbo.loss(key, p, model, guide, x)))

    def diff(a, b):  # largest |a - b| / (1 + |b|) over the loss and every gradient leaf
        return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)) / (1 + np.abs(v))))
                   for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))

    def spans(tree):  # devices each leaf of a tree lives on
        return sorted({len(leaf.sharding.device_set) for leaf in jax.tree.leaves(tree)})

    mesh = device_mesh(4)
    out, singles = {"devices": jax.device_count()}, {}
    xs, ps = shard_batch(x, mesh), replicate(params, mesh)
    out["x_spans"], out["x_shard_rows"] = spans(xs), xs.addressable_shards[0].data.shape[0]
    for name, n in (("loo", 8), ("disarm", 4)):
        single = singles[name] = value_and_grad(TraceDiscrete_ELBO(name, n))(params, x)
        # the data over 4 devices, the parameters replicated
        fn = value_and_grad(TraceDiscrete_ELBO(name, n)).lower(ps, xs).compile()
        data, hlo = fn(ps, xs), fn.as_text()
        # the particles over 4 devices (the same keys: 8 LOO particles, 4 DisARM pairs)
        elbo = TraceDiscrete_ELBO(name, n, vectorize_particles=sharded_particles(mesh))
        fn = value_and_grad(elbo).lower(ps, replicate(x, mesh)).compile()
        particles, hlo_p = fn(ps, replicate(x, mesh)), fn.as_text()
        out[name] = {
            "loss": float(single[0]),
            "data_diff": diff(data, single), "particles_diff": diff(particles, single),
            "grad_spans": spans(data[1]),
            "data_collectives": "all-reduce" in hlo,
            "particles_collectives": any(c in hlo_p for c in ("all-reduce", "all-gather")),
        }

    # both (LOO): a 2 x 2 mesh, the data over one axis and the particles over the other
    mesh2 = device_mesh((2, 2), ("particles", "data"))
    elbo = TraceDiscrete_ELBO("loo", 8, vectorize_particles=sharded_particles(mesh2, "particles"))
    both = value_and_grad(elbo)(replicate(params, mesh2), shard_batch(x, mesh2, "data"))
    out["both_diff"] = diff(both, singles["loo"])
    out["both_grad_spans"] = spans(both[1])

    # the keys and the outputs of sharded_particles, under jit: one particle per device pair
    keys = jax.random.split(key, 8)
    vec = jax.jit(lambda k: sharded_particles(mesh)(lambda k: jax.random.normal(k, (3,)), k))
    draws = vec(keys)
    out["particle_draws_spans"] = spans(draws)
    out["particle_draws_diff"] = diff(draws, jax.vmap(lambda k: jax.random.normal(k, (3,)))(keys))

    # data-parallel SVI: two jitted updates from a replicated state, against one device
    svi = SVI(model, guide, optax_to_numpyro(optax.adam(0.1)), TraceDiscrete_ELBO("loo", 8))
    state0 = svi.init(jax.random.PRNGKey(3), x)
    update = jax.jit(svi.update)
    s1, s4 = state0, replicate(state0, mesh)
    for _ in range(2):
        s1, l1 = update(s1, x)
        s4, l4 = update(s4, xs)
    out["svi_diff"] = diff((l4, svi.get_params(s4)), (l1, svi.get_params(s1)))
    out["svi_param_spans"] = spans(svi.get_params(s4))
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def sharded() -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


TOL = 1e-5  # float32, sums reordered across shards


def test_four_devices_and_the_batch_is_split(sharded):
    assert sharded["devices"] == 4
    assert sharded["x_spans"] == [4]
    assert sharded["x_shard_rows"] == 2  # 8 rows, 2 per device


@pytest.mark.parametrize("name", ["loo", "disarm"])
def test_data_sharded_equals_single_device(sharded, name):
    r = sharded[name]
    assert np.isfinite(r["loss"])
    assert r["data_diff"] < TOL
    assert r["grad_spans"] == [4]  # gradients on the 4 devices (replicated)
    assert r["data_collectives"]  # XLA summed the gradient over the data shards


@pytest.mark.parametrize("name", ["loo", "disarm"])
def test_particles_sharded_equal_single_device(sharded, name):
    """The LOO baseline of each particle is the mean over the other 7, on other devices."""
    r = sharded[name]
    assert r["particles_diff"] < TOL
    assert r["particles_collectives"]


def test_data_and_particles_sharded_on_a_2x2_mesh(sharded):
    assert sharded["both_diff"] < TOL
    assert sharded["both_grad_spans"] == [4]


def test_sharded_particles_outputs_are_split(sharded):
    assert sharded["particle_draws_spans"] == [4]
    assert sharded["particle_draws_diff"] < TOL


def test_data_parallel_svi_updates_equal_single_device(sharded):
    assert sharded["svi_diff"] < TOL
    assert sharded["svi_param_spans"] == [4]


def test_errors_name_the_problem():
    n = jax.device_count()
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        device_mesh(n + 1)
    with pytest.raises(ValueError, match="axis names"):
        device_mesh((1, 1), "data")
    mesh = device_mesh(1)
    with pytest.raises(ValueError, match="cannot be split"):
        shard_batch(np.float32(1.0), mesh)
    batch = shard_batch({"x": np.ones((3, 2), np.float32)}, mesh)
    assert batch["x"].shape == (3, 2)
    assert replicate(np.ones(2), mesh).sharding.is_fully_replicated
    out = sharded_particles(mesh)(
        lambda k: jax.random.uniform(k), jax.random.split(jax.random.key(0), 3)
    )
    assert out.shape == (3,)
