"""The generalized Gumbel-softmax: a relaxation of a discrete law on a finite set of values
(Joo et al., arXiv:2003.01847), built on the one-hot family's shared base."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.special import logsumexp
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import vmap_over
from numpyro.distributions.distribution import Distribution
from numpyro.distributions.util import validate_sample

from numpyro_relax.distributions.categorical import _OneHotLogits, gumbel_log_softmax
from numpyro_relax.distributions.util import (
    all_concrete,
    as_float_array,
    is_concrete,
    no_closed_form,
    one_hot_argmax,
    select_logits,
    straight_through,
    vmap_over_logits,
)

__all__ = ["GeneralizedGumbelSoftmax"]


class GeneralizedGumbelSoftmax(_OneHotLogits):
    r"""Generalized Gumbel-softmax: a relaxation of a discrete law on a finite set of values.

    A discrete variable taking ``values[k]`` with probability :math:`\pi_k` is written
    :math:`z = \sum_k w_k v_k` with :math:`w` one-hot; relaxing :math:`w` by Gumbel-softmax gives

    .. math::
        z = \sum_k w_k v_k, \qquad w = \operatorname{softmax}((\ell + g)/\tau)

    (``hard=True``: :math:`w` is the straight-through one-hot, so :math:`z` is exactly one of the
    values and gradients flow through the soft weights). The event is the scalar :math:`z`.

    ``log_prob`` is the log-pmf of the discrete law, :math:`\log\sum_{k: v_k = z}\pi_k`: exact for
    the hard samples. A relaxed value (``hard=False``) has no closed-form density, so
    ``log_prob`` raises a ``ValueError`` for it (``nan`` under ``jit``); fit relaxed models with
    ``TraceMeanField_ELBO``, which uses the exact KL between the two discrete laws registered in
    :mod:`numpyro_relax.distributions.kl` (the paper's objective). :meth:`from_discrete` builds
    the relaxation of a NumPyro discrete distribution truncated to mass ``1 - eta``.

    :param values: the support points, shape ``batch_shape + (K,)`` (broadcastable).
    :param temperature: positive temperature :math:`\tau`.
    :param probs: probabilities of the values (exactly one of ``probs``/``logits``).
    :param logits: unnormalised log probabilities of the values.
    :param hard: straight-through forward values.

    **References:**

    1. *Generalized Gumbel-Softmax Gradient Estimator for Various Discrete Random Variables*,
       W. Joo, D. Kim, S. Shin, I.-C. Moon (arXiv:2003.01847).
    """

    arg_constraints = {
        "values": constraints.real_vector,
        "temperature": constraints.positive,
        "probs": constraints.simplex,
        "logits": constraints.real_vector,
    }
    pytree_data_fields = ("values", "temperature", "logits")
    pytree_aux_fields = ("hard",)
    reparametrized_params = ["values", "temperature", "probs", "logits"]

    def __init__(
        self,
        values: ArrayLike,
        temperature: ArrayLike,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        hard: bool = False,
        *,
        validate_args: bool | None = None,
    ) -> None:
        name = type(self).__name__
        values = as_float_array("values", values)
        num = jnp.shape(select_logits(name, probs, logits)[0])[-1]
        if values.ndim < 1 or values.shape[-1] != num:
            raise ValueError(
                f"{name}: `values` (shape {values.shape}) needs a last axis of {num} support "
                f"points, one per entry of `{'probs' if probs is not None else 'logits'}`."
            )
        self.hard = bool(hard)
        self._setup(
            probs,
            logits,
            validate_args,
            vectors={"values": values},
            scalar_event=True,
            temperature=temperature,
        )

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.interval(jnp.min(self.values, -1), jnp.max(self.values, -1))

    def sample_weights(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        """The (relaxed or straight-through) one-hot weights :math:`w` behind a sample."""
        y = gumbel_log_softmax(key, self.logits, self.temperature, sample_shape)
        soft = jnp.exp(y)
        return straight_through(one_hot_argmax(y), soft) if self.hard else soft

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return jnp.sum(self.sample_weights(key, sample_shape) * self.values, axis=-1)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        value = jnp.asarray(value)
        match = self.values == value[..., None]
        member = jnp.any(match, axis=-1)
        if not self.hard and all_concrete(member) is False:
            raise ValueError(
                "GeneralizedGumbelSoftmax(hard=False).log_prob: a relaxed value has no "
                "closed-form density; log_prob is the pmf of the discrete law at one of `values`. "
                "Use hard=True, or TraceMeanField_ELBO with the registered discrete KL."
            )
        logp = jax.nn.log_softmax(self.logits, axis=-1)
        lp = logsumexp(jnp.where(match, logp, -jnp.inf), axis=-1)
        return lp if self.hard else jnp.where(member, lp, jnp.nan)

    @property
    def mean(self) -> jax.Array:
        return jnp.sum(self.probs * self.values, axis=-1)

    @property
    def variance(self) -> jax.Array:
        return jnp.sum(self.probs * (self.values - self.mean[..., None]) ** 2, axis=-1)

    def entropy(self) -> jax.Array:
        raise no_closed_form(
            self,
            "entropy",
            "the relaxed law has no closed-form entropy, and `values` may repeat (the discrete "
            "law's entropy is then not that of `probs`)",
        )

    @classmethod
    def from_discrete(
        cls,
        dist: Distribution,
        temperature: ArrayLike,
        *,
        eta: float = 1e-3,
        hard: bool = False,
        max_support: int = 100_000,
        validate_args: bool | None = None,
    ) -> GeneralizedGumbelSoftmax:
        r"""Relax a NumPyro discrete distribution (e.g. ``Poisson``, ``Binomial``, ``Geometric``).

        A finite support is enumerated; a non-negative integer support is truncated to
        :math:`\{0, \dots, n\}` with :math:`n` the smallest integer whose CDF reaches
        :math:`1-\eta` for every batch element, and the pmf is renormalised on it (Joo et al.,
        section 3.2). Runs eagerly: the truncation point fixes the event size.

        Support points of probability 0 (a ``-inf`` log-probability) in every batch element are
        left out of ``values``. A point of probability 0 in some batch elements only keeps a
        ``-inf`` logit there (the category is masked: never sampled, weight 0 in the relaxed
        sample); ``validate_args`` rejects ``-inf`` logits, so with validation on that is a
        ``ValueError`` asking for ``validate_args=False``.
        """
        if not dist.support.is_discrete:
            raise ValueError(f"from_discrete: `dist` must be discrete, got {type(dist).__name__}.")
        if not 0 < eta < 1:
            raise ValueError(f"from_discrete: `eta` must lie in (0, 1), got {eta}.")
        batch_ndim = len(dist.batch_shape)
        if dist.has_enumerate_support:
            support = jnp.asarray(dist.enumerate_support(expand=False))
            support = support.reshape((support.shape[0],) + (1,) * batch_ndim)
        else:
            if not all(is_concrete(leaf) for leaf in jax.tree_util.tree_leaves(dist)):
                raise ValueError("from_discrete: `dist` must have concrete parameters (not jit).")
            n = 16
            log_target = math.log1p(-eta)
            while True:
                support = jnp.arange(n, dtype=jnp.result_type(float))
                support = support.reshape((n,) + (1,) * batch_ndim)
                log_mass = logsumexp(dist.log_prob(support), axis=0)
                if bool(jnp.all(log_mass >= log_target)):
                    reached = np.asarray(
                        jnp.argmax(
                            jnp.moveaxis(lax.cumlogsumexp(dist.log_prob(support), axis=0), 0, -1)
                            >= log_target,
                            axis=-1,
                        )
                    )
                    support = support[: int(reached.max()) + 1]
                    break
                if n >= max_support:
                    raise ValueError(
                        f"from_discrete: mass 1 - eta not reached within {max_support} points."
                    )
                n = min(2 * n, max_support)
        logits = jnp.moveaxis(dist.log_prob(support), 0, -1)
        values = jnp.moveaxis(support, 0, -1).astype(logits.dtype)
        if is_concrete(logits):
            logits, values = cls._drop_impossible(logits, values, validate_args)
        return cls(values, temperature, logits=logits, hard=hard, validate_args=validate_args)

    @classmethod
    def _drop_impossible(
        cls, logits: jax.Array, values: jax.Array, validate_args: bool | None
    ) -> tuple[jax.Array, jax.Array]:
        """Leave out the support points of probability 0 in every batch element; refuse, under
        validation, the ``-inf`` logits of points of probability 0 in some batch elements."""
        zero = np.isneginf(np.asarray(logits))
        keep = ~np.all(zero.reshape(-1, zero.shape[-1]), axis=0)
        if not keep.any():
            raise ValueError("from_discrete: every support point of `dist` has probability 0.")
        logits, values, zero = logits[..., keep], values[..., keep], zero[..., keep]
        validate = cls._validate_args if validate_args is None else validate_args
        if validate and zero.any():
            points = np.unique(np.broadcast_to(np.asarray(values), zero.shape)[zero])
            raise ValueError(
                f"from_discrete: `dist` gives probability 0 (a -inf logit) to the support points "
                f"{points.tolist()} in some batch elements but not in others, and validation "
                "rejects -inf logits: pass validate_args=False (or disable validation) to relax "
                "it with those points masked."
            )
        return logits, values


@vmap_over.register
def _(dist: GeneralizedGumbelSoftmax, values=None, temperature=None, probs=None, logits=None):
    return vmap_over_logits(
        dist, probs=probs, logits=logits, values=values, temperature=temperature
    )
