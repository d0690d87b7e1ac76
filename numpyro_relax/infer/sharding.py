"""SVI over several devices with JAX's own SPMD partitioner (``jax.sharding``).

Nothing here distributes work by hand: the helpers place arrays on a
:class:`jax.sharding.Mesh` (the data batch split along a mesh axis, the parameters and the
optimiser state replicated) or constrain them inside a jitted program, and XLA's partitioner
splits the computation and inserts the collectives (the all-reduce that sums the gradient over
the data shards, the all-gather behind a leave-one-out baseline). The program is the
single-device one, so its loss and gradient are the single-device ones up to the order of
floating-point sums.

Data parallelism (the batch axis sharded, the parameters replicated)::

    mesh = device_mesh(4)                           # or jax.make_mesh((4,), ("data",))
    svi = SVI(model, guide, optax_to_numpyro(optax.adam(1e-3)), TraceDiscrete_ELBO("loo", 8))
    state = replicate(svi.init(key, x[:batch]), mesh)
    update = jax.jit(svi.update)
    for xb in batches:
        state, loss = update(state, shard_batch(xb, mesh))

Particles over devices (multi-particle estimators; the baselines still use *all* particles,
because the leave-one-out mean over the particle axis is part of the same program)::

    elbo = TraceDiscrete_ELBO("loo", num_particles=8,
                              vectorize_particles=sharded_particles(mesh))

Both on one two-dimensional mesh: ``device_mesh((2, 4), ("particles", "data"))`` with
``shard_batch(x, mesh, "data")`` and ``sharded_particles(mesh, "particles")``. See the
"Many devices" page of the documentation for several GPUs and several hosts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["device_mesh", "replicate", "shard_batch", "sharded_particles"]

FORCE_CPU_DEVICES = "XLA_FLAGS=--xla_force_host_platform_device_count=N"


def device_mesh(
    shape: int | Sequence[int] | None = None,
    axis_names: str | Sequence[str] = "data",
    devices: Sequence[Any] | None = None,
) -> Mesh:
    """A :class:`~jax.sharding.Mesh` over the first ``prod(shape)`` devices.

    :param shape: devices along each mesh axis; an int for a one-axis mesh; ``None``: all
        devices on one axis.
    :param axis_names: the axis name(s), one per entry of ``shape``.
    :param devices: the devices to use (default ``jax.devices()``, every process's devices
        after ``jax.distributed.initialize``).
    :raises ValueError: more devices requested than there are (the message says how to force
        several CPU devices), or names that do not match the shape.
    """
    devices = list(jax.devices() if devices is None else devices)
    names = (axis_names,) if isinstance(axis_names, str) else tuple(axis_names)
    if shape is None:
        shape = (len(devices),)
    shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
    if len(shape) != len(names):
        raise ValueError(f"device_mesh: shape {shape} needs {len(shape)} axis names, got {names}")
    needed = int(np.prod(shape))
    if min(shape) < 1 or needed > len(devices):
        kind = devices[0].platform if devices else "no"
        hint = f" On CPU, set {FORCE_CPU_DEVICES} before JAX is imported." if kind == "cpu" else ""
        raise ValueError(
            f"device_mesh: a mesh of shape {shape} needs {needed} devices; "
            f"{len(devices)} {kind} device(s) are available.{hint}"
        )
    return Mesh(np.asarray(devices[:needed]).reshape(shape), names)


def _place(tree: Any, sharding: NamedSharding) -> Any:
    # outside jit this places the arrays; inside jit it constrains the program's intermediate
    return jax.lax.with_sharding_constraint(tree, sharding)


def shard_batch(batch: Any, mesh: Mesh, axis: str | Sequence[str] = "data") -> Any:
    """Split the leading (batch) axis of every array in ``batch`` over the mesh axis ``axis``.

    Outside :func:`jax.jit` the arrays are placed (``jax.device_put``-like); inside, the
    intermediate is constrained (``jax.lax.with_sharding_constraint``), e.g. a batch drawn from
    a replicated training set inside a jitted ``lax.scan``.

    :param batch: an array or a pytree of arrays with the same leading size.
    :param mesh: the device mesh.
    :param axis: the mesh axis (or axes) the batch is split over.
    :raises ValueError: a leading size that the axis size does not divide.
    """
    size = int(np.prod([mesh.shape[a] for a in ((axis,) if isinstance(axis, str) else axis)]))
    for leaf in jax.tree.leaves(batch):
        if np.ndim(leaf) == 0 or np.shape(leaf)[0] % size:
            raise ValueError(
                f"shard_batch: a batch of leading shape {np.shape(leaf)[:1]} cannot be split "
                f"evenly over {size} devices (mesh axis {axis!r}); use a multiple of {size}."
            )
    return _place(batch, NamedSharding(mesh, PartitionSpec(axis)))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """A full copy of every array of ``tree`` on every device of ``mesh`` (parameters, the
    optimiser state, an ``SVIState``, a training set a jitted loop draws batches from)."""
    return _place(tree, NamedSharding(mesh, PartitionSpec()))


def sharded_particles(mesh: Mesh, axis: str | Sequence[str] = "data") -> Callable:
    """A ``vectorize_particles`` callable that splits the particles over the mesh axis ``axis``.

    The result is ``jax.vmap`` over the particle keys, with the keys and every output
    constrained to be sharded along their particle axis: under :func:`jax.jit` each device
    runs its share of the particles, and whatever combines particles afterwards (the
    leave-one-out baselines of ``"loo"``/``"vargrad"``, the mean over particles) is computed
    by XLA from all of them, with the collectives it needs. The values equal those of
    ``vectorize_particles=True`` (JAX's default ``jax_threefry_partitionable`` draws the same
    random numbers however the program is split). A particle count that the axis size does not
    divide still works, with padded shards.

    :param mesh: the device mesh.
    :param axis: the mesh axis (or axes) the particles are split over.
    :return: ``(fn, keys) -> outputs``, for the ``vectorize_particles`` argument of
        :class:`~numpyro_relax.infer.TraceDiscrete_ELBO`, its presets, and NumPyro's ELBOs.
    """
    sharding = NamedSharding(mesh, PartitionSpec(axis))

    def vectorize(fn: Callable, keys: jax.Array) -> Any:
        return _place(jax.vmap(fn)(_place(keys, sharding)), sharding)

    return vectorize
