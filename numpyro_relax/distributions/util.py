"""Shared helpers of every family: parameter checks, logits/probs conversion, straight-through,
and the package's numerics (the one private home of them; each family module imports them from
here): clamped uniform and logistic noise, the clamped logit, the stable Bernoulli log-pmf,
entropy and KL from logits, ``log1mexp``, triangular solves and log-determinants, standard-normal
interval masses and the Normal tail functions compiled once.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax, random
from jax.scipy import special
from jax.typing import ArrayLike
from numpyro.distributions.batch_util import _default_vmap_over
from numpyro.distributions.util import clamp_probs as clamp_probs  # NumPyro's own: (tiny, 1 - eps)


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (not a tracer under ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def all_concrete(condition: ArrayLike) -> bool | None:
    """``all(condition)`` when it can be known now (eagerly, even inside a trace), else ``None``.

    Argument checks use it so that bad concrete input fails loudly while traced code runs on.
    """
    with jax.ensure_compile_time_eval():
        condition = jnp.asarray(condition)
        if not is_concrete(condition):
            return None
        return bool(jnp.all(condition))


def straight_through(hard: ArrayLike, soft: ArrayLike) -> jax.Array:
    """Forward value ``hard``, gradient of ``soft``.

    Computed as ``hard + (soft - stop_gradient(soft))``: the parentheses make the forward value
    exactly ``hard`` in floating point (``(hard + soft) - soft`` gives 0.99999994 for 1 in float32).
    """
    return hard + (soft - lax.stop_gradient(soft))


def finfo(x: ArrayLike) -> jnp.finfo:
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return jnp.finfo(dtype)


def safe_log(x: ArrayLike) -> jax.Array:
    """``log(max(x, tiny))``: finite, with finite gradients, at coordinates that are exactly 0.

    Log densities on the simplex take the log of every coordinate of their value; a value scored
    without its sampler's intermediates (the model side of an ELBO under NumPyro's ``replay``, a
    masked site, an observed vertex) may have exact zeros. Below ``tiny`` the derivative is 0
    (a ``where``, not ``maximum``: the cotangent ``g / tiny`` overflows, and ``maximum``'s
    derivative would multiply that ``inf`` by 0).
    """
    x = jnp.asarray(x)
    tiny = finfo(x).tiny
    return jnp.log(jnp.where(x >= tiny, x, tiny))


def simplex_from_log(log_x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A simplex sample with strictly positive coordinates from its logs, and those logs.

    ``log_x`` is floored at ``log(tiny)`` (``-87.3`` in float32), and the point is its ``exp``: no
    coordinate rounds to 0 at low temperature, so a log density computed from the value alone
    (NumPyro's ``replay`` and ``MaskedDistribution`` drop intermediates) is finite with finite
    gradients, and equals the one computed from the returned logs (the same point is scored on
    both sides of an ELBO). The sum differs from 1 by at most ``K * tiny``. This is NumPyro's and
    PyTorch's ``clamp_probs`` convention for relaxed samples, applied in log space.
    """
    floor = math.log(finfo(log_x).tiny)
    log_x = jnp.where(log_x > floor, log_x, floor)  # one select backward (``maximum``: several)
    return jnp.exp(log_x), log_x


def probs_to_logits(probs: ArrayLike, is_binary: bool = False) -> jax.Array:
    """Logits of ``probs``: ``log p`` for a categorical vector, ``log p - log1p(-p)`` if binary."""
    probs = jnp.asarray(probs)
    if not jnp.issubdtype(probs.dtype, jnp.floating):
        probs = probs.astype(jnp.result_type(float))
    p = clamp_probs(probs)
    if is_binary:
        return jnp.log(p) - jnp.log1p(-p)
    return jnp.log(p)


def as_float_array(name: str, value: ArrayLike) -> jax.Array:
    """``value`` as a floating JAX array; a clear ``ValueError`` naming ``name`` otherwise.

    Integers become the default float dtype; half precision (``float16``, ``bfloat16``) is
    promoted to ``float32``, the narrowest dtype the library computes in (see
    ``docs/decisions.md``: float16 underflows at ``6e-5``, so relaxed samples and their log
    densities would degenerate at ordinary temperatures, and JAX's ``ndtr`` family rejects it).
    """
    try:
        arr = jnp.asarray(value)
    except TypeError as e:  # pragma: no cover - message path
        raise ValueError(f"`{name}` must be an array of numbers, got {type(value)!r}") from e
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    elif jnp.finfo(arr.dtype).bits < 32:
        arr = arr.astype(jnp.float32)
    return arr


def select_logits(
    dist_name: str, probs: ArrayLike | None, logits: ArrayLike | None, *, is_binary: bool = False
) -> tuple[jax.Array, jax.Array | None]:
    """Check that exactly one of ``probs``/``logits`` is given and return ``(logits, probs)``.

    ``probs`` is returned (as an array) only when it was the argument given, so that
    ``validate_args`` can check it; the logits are what the distribution computes with.
    """
    if (probs is None) == (logits is None):
        raise ValueError(
            f"{dist_name}: pass exactly one of `probs` or `logits` "
            f"(got {'both' if probs is not None else 'neither'})."
        )
    min_ndim = 0 if is_binary else 1
    if probs is not None:
        probs = as_float_array("probs", probs)
        if probs.ndim < min_ndim:
            raise ValueError(
                f"{dist_name}: `probs` must have at least one dimension (the categories)."
            )
        return probs_to_logits(probs, is_binary=is_binary), probs
    logits = as_float_array("logits", logits)
    if logits.ndim < min_ndim:
        raise ValueError(
            f"{dist_name}: `logits` must have at least one dimension (the categories)."
        )
    return logits, None


def validation_on(dist: Any, validate_args: bool | None) -> bool:
    """Whether a distribution under construction will validate: ``validate_args`` if given,
    else NumPyro's global default (``numpyro.enable_validation`` / ``validation_enabled``)."""
    return bool(dist._validate_args if validate_args is None else validate_args)


def check_positive(
    dist_name: str, name: str, value: ArrayLike, *, validate: bool = False
) -> jax.Array:
    """Check a positive parameter (a temperature, a scale) that is known now (not traced).

    Only with ``validate`` (the distribution's ``validate_args``, or NumPyro's global default),
    as for every NumPyro distribution: with validation disabled, out-of-support parameters
    construct. Then a concrete value must be ``> 0``, finite and at least the smallest normal
    number of its dtype (``1.18e-38`` in float32): an infinite temperature makes the density NaN,
    and XLA computes with a subnormal one as if it were 0. The comparison is made in NumPy, on
    the stored value: XLA flushes subnormal floats to zero, so ``jnp`` would call a positive
    subnormal "not positive".
    """
    value = as_float_array(name, value)
    if not validate:
        return value
    with jax.ensure_compile_time_eval():
        if not is_concrete(value):
            return value
        host = np.asarray(value)
    if not np.all(host > 0):
        raise ValueError(f"{dist_name}: `{name}` must be positive, got {value}.")
    if not np.all(np.isfinite(host)):
        raise ValueError(f"{dist_name}: `{name}` must be finite, got {value}.")
    tiny = float(np.finfo(host.dtype).tiny)
    if not np.all(host >= tiny):
        raise ValueError(
            f"{dist_name}: `{name}` must be at least {tiny:.8g}, the smallest normal "
            f"{host.dtype} number (XLA flushes subnormal numbers to zero, so it would "
            f"compute with 0), got {value}."
        )
    return value


def broadcast_batch(dist_name: str, **shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Broadcast batch shapes, raising a ``ValueError`` that names the arguments on mismatch."""
    try:
        return lax.broadcast_shapes(*shapes.values())
    except ValueError as e:
        desc = ", ".join(f"`{k}` batch shape {v}" for k, v in shapes.items())
        raise ValueError(f"{dist_name}: incompatible shapes: {desc}.") from e


@jax.custom_jvp
def log1mexp(x: ArrayLike) -> jax.Array:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate at both ends (Maechler 2012).

    ``x`` is clamped to ``<= -tiny`` so that the value stays finite at ``x = 0``. The derivative
    :math:`-e^x/(1 - e^x)` is a custom JVP (zero at the clamp, like the clamp's
    own derivative): guarding both branches of the ``where`` against NaN gradients instead
    costs XLA:CPU about 3x in the forward pass.
    """
    x = jnp.minimum(x, -finfo(x).tiny)
    return jnp.where(x > -0.6931472, jnp.log(-jnp.expm1(x)), jnp.log1p(-jnp.exp(x)))


@log1mexp.defjvp
def _log1mexp_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    (x,), (dx,) = primals, tangents
    value = log1mexp(x)
    slope = -jnp.exp(x - value)  # d/dx log(1 - e^x) = -e^x / (1 - e^x)
    return value, jnp.where(x < -finfo(x).tiny, slope, 0.0) * dx


def no_closed_form(dist: Any, what: str, why: str = "it has no closed form") -> NotImplementedError:
    """The ``NotImplementedError`` a distribution raises for a moment it cannot give, saying why
    (NumPyro's base class raises one without a message)."""
    return NotImplementedError(f"{type(dist).__name__}.{what}: {why}.")


def categorical_entropy(logits: ArrayLike) -> jax.Array:
    """Entropy of a categorical law from logits over the last axis; ``0 log 0 = 0`` for masked
    categories (``-inf`` logits), with a zero gradient there."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.sum(jnp.exp(logp) * jnp.where(jnp.isneginf(logp), 0.0, logp), axis=-1)


def one_hot_argmax(x: ArrayLike) -> jax.Array:
    """Exact one-hot vector of the argmax over the last axis, in ``x``'s dtype."""
    return jax.nn.one_hot(jnp.argmax(x, axis=-1), jnp.shape(x)[-1], dtype=jnp.result_type(x))


def vmap_over_logits(dist: Any, *, logits: Any = None, probs: Any = None, **others: Any) -> Any:
    """``vmap_over`` axes for a distribution that stores logits: ``probs`` axes map to logits."""
    return _default_vmap_over(dist, logits=logits if logits is not None else probs, **others)


def tril_matvec(scale_tril: jax.Array, eps: jax.Array) -> jax.Array:
    """``L @ eps`` over the last axis; one matrix product when ``L`` is shared by the batch."""
    if scale_tril.ndim == 2:
        return eps @ scale_tril.T
    return jnp.matmul(scale_tril, eps[..., None])[..., 0]


def tril_mahalanobis(scale_tril: jax.Array, v: jax.Array) -> jax.Array:
    """``|L^{-1} v|^2`` over the last axis, without copying ``L`` for every batch element of ``v``.

    The batch axes of ``v`` along which ``L`` is shared (absent from, or of size 1 in, its batch
    shape) become the columns of one right-hand side, as in NumPyro's ``_batch_mahalanobis``: one
    triangular solve per distinct factor, and memory of the order of ``v`` plus ``L`` instead of
    ``batch x D^2``.
    """
    n = v.shape[-1]
    batch = lax.broadcast_shapes(v.shape[:-1], scale_tril.shape[:-2])
    v = jnp.broadcast_to(v, batch + (n,))
    tril_batch = (1,) * (len(batch) - scale_tril.ndim + 2) + scale_tril.shape[:-2]
    own = [i for i, s in enumerate(tril_batch) if s != 1]  # axes along which L varies
    shared = [i for i, s in enumerate(tril_batch) if s == 1]
    own_shape = tuple(batch[i] for i in own)
    shared_shape = tuple(batch[i] for i in shared)
    tril = jnp.reshape(scale_tril, own_shape + (n, n))
    rhs = jnp.transpose(v, (*own, len(batch), *shared))
    rhs = jnp.reshape(rhs, own_shape + (n, math.prod(shared_shape)))
    white = jax.scipy.linalg.solve_triangular(tril, rhs, lower=True)
    out = jnp.reshape(jnp.sum(jnp.square(white), axis=-2), own_shape + shared_shape)
    return jnp.transpose(out, np.argsort(own + shared))


def uniform(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """``jax.random.uniform`` clamped to ``(tiny, 1 - eps)``, so that ``log u`` and
    ``log(1 - u)`` are finite; for the same key, ``u < p`` is the draw of NumPyro's
    ``Bernoulli(p).sample``."""
    info = jnp.finfo(dtype)
    return jnp.clip(random.uniform(key, shape, dtype), info.tiny, 1.0 - info.eps)


def logit_uniform(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    r"""Standard logistic noise :math:`\log u - \log(1 - u)` of :func:`uniform`."""
    u = uniform(key, shape, dtype)
    return jnp.log(u) - jnp.log1p(-u)


def uniform_open(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Alias of :func:`uniform` (the distributions' former name for the same draw)."""
    return uniform(key, shape, dtype)


def logistic_noise(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Alias of :func:`logit_uniform`: standard logistic noise, one draw per element."""
    return logit_uniform(key, shape, dtype)


def tril_half_log_det(scale_tril: jax.Array) -> jax.Array:
    r""":math:`\tfrac12\log|\det(L L^\top)| = \sum_i \log|L_{ii}|` of a triangular factor ``L``."""
    return jnp.sum(jnp.log(jnp.abs(jnp.diagonal(scale_tril, axis1=-2, axis2=-1))), axis=-1)


HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

# The Normal tail functions, compiled once per shape: eagerly, the many primitives inside them
# would each be dispatched (and compiled) separately; inside a trace the jit is inlined. The
# ``jit_`` prefix keeps them apart from ``jax.scipy.special``'s names.
jit_log_ndtr = jax.jit(special.log_ndtr)
jit_ndtr = jax.jit(special.ndtr)
jit_ndtri = jax.jit(special.ndtri)


def log_ndtr_pm(v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``log Phi(v)`` and ``log Phi(-v)`` from one ``log_ndtr`` (one copy of it to compile)."""
    both = special.log_ndtr(jnp.stack([v, -v]))
    return both[0], both[1]


@jax.jit
def logit(x: ArrayLike) -> jax.Array:
    """``log x - log1p(-x)`` with ``x`` clamped into ``(tiny, 1 - eps)``."""
    x = clamp_probs(x)
    return jnp.log(x) - jnp.log1p(-x)


def bernoulli_log_pmf(value: ArrayLike, logits: ArrayLike) -> jax.Array:
    """``value * log sigmoid(l) + (1 - value) * log sigmoid(-l)``: linear in ``value``.

    Computed as ``value * min(l, 0) - (1 - value) * max(l, 0) - log1p(exp(-|l|))`` (no
    cancellation on either side, one ``exp`` and one ``log1p``: about 4x cheaper than two
    log_sigmoid, forward and backward), with the derivatives ``value - sigmoid(l)`` and ``l`` as a
    custom JVP: autodiff of the ``min``/``max``/``abs`` form is wrong at ``l = 0`` exactly
    (NumPyro 0.22's ``BernoulliLogits.log_prob`` has gradient 0 there instead of -1/2).
    Infinite logits (certain outcomes, masked gates) give ``0`` and ``-inf``, as NumPyro's.
    """
    logits = jnp.asarray(logits)
    dtype = jnp.result_type(logits, float)
    return _bernoulli_log_pmf(jnp.asarray(value, dtype), logits.astype(dtype))


@jax.custom_jvp
def _bernoulli_log_pmf(value: jax.Array, logits: jax.Array) -> jax.Array:
    tail = jnp.log1p(jnp.exp(-jnp.abs(logits)))
    # an outcome of probability 0 (an infinite logit) that the value does not take adds 0, not
    # 0 * inf (the derivatives are the custom JVP's, untouched by the where)
    lower = jnp.where(value == 0, 0.0, value * jnp.minimum(logits, 0.0))
    upper = jnp.where(value == 1, 0.0, (1 - value) * jnp.maximum(logits, 0.0))
    return lower - upper - tail


@_bernoulli_log_pmf.defjvp
def _bernoulli_log_pmf_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    (value, logits), (d_value, d_logits) = primals, tangents
    out = _bernoulli_log_pmf(value, logits)
    big = jnp.finfo(logits.dtype).max  # an infinite logit times a zero tangent is 0, not NaN
    return out, (value - jax.nn.sigmoid(logits)) * d_logits + jnp.clip(logits, -big, big) * d_value


def log_sigmoid_both(x: ArrayLike) -> jax.Array:
    """``log sigmoid(x) + log sigmoid(-x) = -|x| - 2 log1p(exp(-|x|))``, the log-density of the
    standard logistic law, with one ``exp`` and one ``log1p`` instead of two softplus."""
    a = jnp.abs(x)
    return -a - 2.0 * jnp.log1p(jnp.exp(-a))


def bernoulli_entropy(logits: ArrayLike) -> jax.Array:
    """Entropy from logits; ``0 log 0 = 0`` at infinite logits (with a zero gradient there)."""
    p1, p0 = jax.nn.sigmoid(logits), jax.nn.sigmoid(-logits)
    log_p1 = jnp.where(p1 > 0, jax.nn.log_sigmoid(logits), 0.0)
    log_p0 = jnp.where(p0 > 0, jax.nn.log_sigmoid(-logits), 0.0)
    return -(p1 * log_p1 + p0 * log_p0)


def bernoulli_kl(logits_p: ArrayLike, logits_q: ArrayLike) -> jax.Array:
    r"""KL between Bernoulli laws from logits, :math:`\sum_{b} p_b(\log p_b - \log q_b)`.

    An outcome without mass under ``p`` (an infinite logit) adds 0 whatever ``q`` gives it: the
    ``where`` keeps ``0 * -inf`` and ``-inf - -inf`` out of the value and the gradient.
    """
    p1, p0 = jax.nn.sigmoid(logits_p), jax.nn.sigmoid(-logits_p)
    r1 = jax.nn.log_sigmoid(logits_p) - jax.nn.log_sigmoid(logits_q)
    r0 = jax.nn.log_sigmoid(-logits_p) - jax.nn.log_sigmoid(-logits_q)
    return p1 * jnp.where(p1 > 0, r1, 0.0) + p0 * jnp.where(p0 > 0, r0, 0.0)


@jax.jit
def normal_interval_mass(a: ArrayLike, b: ArrayLike) -> jax.Array:
    r""":math:`\Phi(b) - \Phi(a)` for :math:`a \le b`, computed in the tail where it is accurate."""
    return jnp.where(a > 0, jit_ndtr(-a) - jit_ndtr(-b), jit_ndtr(b) - jit_ndtr(a))


def std_normal_pdf(x: ArrayLike) -> jax.Array:
    """The standard Normal density."""
    return jnp.exp(-0.5 * jnp.square(x) - HALF_LOG_2PI)
