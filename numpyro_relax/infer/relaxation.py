"""The logit-space relaxation shared by the functional estimators (see
:mod:`numpyro_relax.estimators` for the conventions): the perturbed variable ``z``, its hard
threshold / argmax, the tempered soft sample, and the reparameterised ``z | b``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from numpyro_relax.distributions.util import bernoulli_log_pmf
from numpyro_relax.infer.core import uniform as _uniform

# --------------------------------------------------------------------------------------------
# sampling helpers (logit space)
# --------------------------------------------------------------------------------------------


def _perturb(logits: jax.Array, u: jax.Array, family: str) -> jax.Array:
    """The relaxed logit-space variable ``z`` whose hard threshold / argmax is the sample."""
    if family == "bernoulli":
        return logits + (jnp.log(u) - jnp.log1p(-u))
    gumbel = -jnp.log(-jnp.log(u))
    return jax.nn.log_softmax(logits, axis=-1) + gumbel


def _hard(z: jax.Array, family: str) -> jax.Array:
    if family == "bernoulli":
        return (z > 0).astype(z.dtype)
    return jax.nn.one_hot(jnp.argmax(z, axis=-1), z.shape[-1], dtype=z.dtype)


def _soft(z: jax.Array, temperature: ArrayLike, family: str) -> jax.Array:
    if family == "bernoulli":
        return jax.nn.sigmoid(z / temperature)
    return jax.nn.softmax(z / temperature, axis=-1)


def _conditional(logits: jax.Array, v: jax.Array, b: jax.Array, family: str) -> jax.Array:
    """Reparameterised sample of ``z | b`` (``v ~ U(0, 1)``), differentiable in ``logits``.

    Bernoulli: ``u | b=1 ~ U(1 - p, 1)`` and ``u | b=0 ~ U(0, 1 - p)``, written in logit space.
    Categorical: the maximum of Gumbel-perturbed normalised logits is a standard Gumbel
    independent of the argmax; the others are Gumbels truncated below it.
    """
    if family == "bernoulli":
        log_v_odds = jnp.log(v) - jnp.log1p(-v)
        # z = theta + logit(u'): b = 1 gives log(1 + v / ((1 - v)(1 - p))) > 0,
        # b = 0 gives -log(1 + (1 - v) / (v p)) < 0.
        z1 = jax.nn.softplus(log_v_odds - jax.nn.log_sigmoid(-logits))
        z0 = -jax.nn.softplus(-log_v_odds - jax.nn.log_sigmoid(logits))
        return jnp.where(b > 0, z1, z0)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    log_e = jnp.log(-jnp.log(v))  # log of Exp(1) variables
    log_e_top = jnp.sum(jnp.where(b > 0, log_e, 0.0), axis=-1, keepdims=True)
    others = -jnp.logaddexp(log_e - log_probs, log_e_top)
    return jnp.where(b > 0, -log_e_top, others)


def _log_prob(logits: jax.Array, b: jax.Array, family: str) -> jax.Array:
    if family == "bernoulli":
        return jnp.sum(bernoulli_log_pmf(b, logits))
    return jnp.sum(b * jax.nn.log_softmax(logits, axis=-1))


def _score(logits: jax.Array, b: jax.Array, family: str) -> jax.Array:
    """``d log p(b) / d logits``."""
    if family == "bernoulli":
        return b - jax.nn.sigmoid(logits)
    return b - jax.nn.softmax(logits, axis=-1)


def _noise(key: jax.Array, num_samples: int, logits: jax.Array) -> jax.Array:
    """``num_samples`` independent clamped uniforms with the shape of ``logits``, in one draw."""
    return _uniform(key, (num_samples,) + logits.shape, logits.dtype)


def _bcast(x: jax.Array, like: jax.Array) -> jax.Array:
    """Reshape per-sample scalars ``(n,)`` to broadcast against ``(n, *logits.shape)``."""
    return x.reshape(x.shape + (1,) * (like.ndim - x.ndim))
