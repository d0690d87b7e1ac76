"""Measurements behind docs/choosing_an_estimator.md: for every estimator name of
TraceDiscrete_ELBO, the relative bias, relative standard deviation and cosine similarity of its
gradient to the exact one (hand enumeration), and the time per gradient, on two small models;
and VarGrad against LOO on a plate of many local bits.

    python benchmarks/estimator_choice.py [--keys 2000] [--bits 2000]
"""

import argparse
import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro.infer.util import log_density

from numpyro_relax.infer import TraceDiscrete_ELBO
from numpyro_relax.infer.core import ESTIMATORS

DATA = jnp.array([0.3, 1.5, -0.4])


def bits_model():
    with numpyro.plate("d", 3):
        z = numpyro.sample("z", dist.Bernoulli(0.4))
        numpyro.sample("x", dist.Normal(2.0 * z, 1.0), obs=DATA)


def bits_guide():
    a = numpyro.param("a", jnp.zeros(3))
    with numpyro.plate("d", 3):
        numpyro.sample("z", dist.Bernoulli(logits=a))


def exact_grad(params):
    grid = jnp.array(list(itertools.product([0, 1], repeat=3)))

    def elbo(p):
        def one(z):
            lp, _ = log_density(bits_model, (), {}, {"z": z})
            lq, _ = log_density(bits_guide, (), {}, {"z": z, **p})
            return jnp.exp(lq) * (lp - lq)

        return jnp.sum(jax.vmap(one)(grid))

    return jax.grad(lambda p: -elbo(p))(params)["a"]


def quality(estimator, params, exact, num_keys, num_particles):
    elbo = TraceDiscrete_ELBO(estimator, num_particles=num_particles)
    grad = jax.jit(jax.grad(lambda p, k: elbo.loss(k, p, bits_model, bits_guide)))
    many = jax.jit(jax.vmap(lambda k: grad(params, k)["a"]))
    keys = random.split(random.PRNGKey(0), num_keys)
    g = np.asarray(many(keys))
    grad(params, keys[0])["a"].block_until_ready()
    t0 = time.perf_counter()
    for k in keys[:200]:
        grad(params, k)["a"].block_until_ready()
    per_call = (time.perf_counter() - t0) / 200
    mean, norm = g.mean(0), np.linalg.norm(exact)
    cos = np.mean(g @ exact / (np.linalg.norm(g, axis=1) * norm + 1e-30))
    return (
        np.linalg.norm(mean - exact) / norm,
        np.sqrt(np.mean(np.sum((g - mean) ** 2, axis=1))) / norm,
        cos,
        per_call,
    )


def local_bits_variance(estimator, num_bits, num_keys=200):
    data = random.normal(random.PRNGKey(1), (num_bits,)) + 1.0

    def model():
        with numpyro.plate("n", num_bits):
            z = numpyro.sample("z", dist.Bernoulli(0.5))
            numpyro.sample("x", dist.Normal(2.0 * z, 1.0), obs=data)

    def guide():
        a = numpyro.param("a", jnp.zeros(num_bits))
        with numpyro.plate("n", num_bits):
            numpyro.sample("z", dist.Bernoulli(logits=a))

    elbo = TraceDiscrete_ELBO(estimator, num_particles=4)
    params = {"a": jnp.zeros(num_bits)}
    grad = jax.jit(
        jax.vmap(lambda k: jax.grad(lambda p: elbo.loss(k, p, model, guide))(params)["a"])
    )
    g = np.asarray(grad(random.split(random.PRNGKey(2), num_keys)))
    return float(np.mean(np.var(g, axis=0)))


def main(args):
    params = {"a": jnp.array([0.2, -0.3, 0.5])}
    exact = np.asarray(exact_grad(params))
    print("| estimator | kind | unbiased | rel. bias | rel. std | cosine | ms / gradient |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name, spec in ESTIMATORS.items():
        if "bernoulli" not in spec.families:
            continue
        n = max(2, spec.min_particles) if spec.kind == "score" else 1
        bias, std, cos, t = quality(name, params, exact, args.keys, n)
        print(
            f"| `{name}` ({n} particle{'s' * (n > 1)}) | {spec.kind} | {spec.unbiased} | "
            f"{bias:.3f} | {std:.3f} | {cos:.3f} | {1e3 * t:.2f} |"
        )
    v_loo = local_bits_variance("loo", args.bits)
    v_vargrad = local_bits_variance("vargrad", args.bits)
    print(
        f"\n{args.bits} plate-local bits, 4 particles: mean per-logit gradient variance "
        f"loo {v_loo:.3g}, vargrad {v_vargrad:.3g} (ratio {v_vargrad / v_loo:.0f}x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=2000, help="gradient estimates per estimator")
    parser.add_argument("--bits", type=int, default=2000, help="bits in the plate-local model")
    main(parser.parse_args())
