"""Argument checks of the functional estimators (:mod:`numpyro_relax.estimators`): every
estimator validates ``f``, ``logits``, ``family`` and ``num_samples`` the same way."""

from __future__ import annotations

import operator
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

Family = Literal["bernoulli", "categorical"]
_FAMILIES = ("bernoulli", "categorical")


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_family(name: str, family: Any, allowed: tuple[str, ...] = _FAMILIES) -> str:
    if family not in allowed:
        raise ValueError(f"{name}: `family` must be one of {allowed}, got {family!r}.")
    return family


def check_count(owner: str, arg: str, value: Any, minimum: int = 1, why: str = "") -> int:
    """``value`` as an ``int`` at least ``minimum``; ``ValueError`` naming ``owner`` and ``arg``
    otherwise (every particle, sample and draw count of the library goes through here)."""
    try:
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{owner}: `{arg}` must be an integer, got {value!r}.") from None
    if n < minimum:
        raise ValueError(f"{owner}: `{arg}` must be >= {minimum}{why}, got {n}.")
    return n


def _check_num_samples(name: str, num_samples: Any, minimum: int = 1, why: str = "") -> int:
    return check_count(name, "num_samples", num_samples, minimum, why)


def _check_logits(name: str, logits: Any, family: str) -> jax.Array:
    try:
        arr = jnp.asarray(logits)
    except TypeError:
        raise ValueError(f"{name}: `logits` must be an array of numbers, got {logits!r}.") from None
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if family == "categorical" and (arr.ndim < 1 or arr.shape[-1] < 2):
        raise ValueError(
            f"{name}: `logits` must have shape (..., K) with K >= 2 categories for "
            f"family='categorical', got shape {arr.shape}."
        )
    if _is_concrete(arr) and not np.all(np.isfinite(np.asarray(arr))):
        raise ValueError(f"{name}: `logits` must be finite.")
    return arr


def _check_positive(name: str, arg: str, value: Any) -> Any:
    if _is_concrete(value):
        arr = np.asarray(value, dtype=float)
        if not np.all(arr > 0):
            raise ValueError(f"{name}: `{arg}` must be positive, got {value!r}.")
    return value


def _check_f(name: str, f: Any, logits: jax.Array) -> None:
    if not callable(f):
        raise ValueError(f"{name}: `f` must be callable, got {f!r}.")
    out = jax.eval_shape(f, jax.ShapeDtypeStruct(logits.shape, logits.dtype))
    if not hasattr(out, "shape") or out.shape != ():
        shape = getattr(out, "shape", type(out).__name__)
        raise ValueError(
            f"{name}: `f` must map one sample of shape {logits.shape} to a scalar, "
            f"got output shape {shape}."
        )


def _prepare(
    name: str, f: Any, logits: Any, family: Any, num_samples: Any, minimum: int = 1, why: str = ""
) -> tuple[jax.Array, int]:
    family = _check_family(name, family)
    n = _check_num_samples(name, num_samples, minimum, why)
    arr = _check_logits(name, logits, family)
    _check_f(name, f, arr)
    return arr, n
