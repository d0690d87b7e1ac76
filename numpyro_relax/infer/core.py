r"""The estimator core: every gradient estimator for a discrete variable, written once.

An estimator acts on one discrete variable given its logits :math:`\theta`, in one of three
families (the *site family*):

- ``"bernoulli"``: values in :math:`\{0, 1\}` with the shape of the logits
  (NumPyro's ``Bernoulli``);
- ``"onehot"``: one-hot vectors, logits of shape ``(..., K)``
  (:class:`~numpyro_relax.OneHotCategorical`);
- ``"categorical"``: integer indices of shape ``(...)`` with logits ``(..., K)``
  (NumPyro's ``Categorical``). Only estimators that never differentiate the value apply.

There are three kinds of estimator, and each kind is used both by the functional estimators
(:mod:`numpyro_relax.estimators`) and by :class:`~numpyro_relax.infer.TraceDiscrete_ELBO`:

- **pathwise** (biased): :attr:`EstimatorSpec.relax` returns a value whose forward pass is an
  exact sample of the discrete law and whose backward pass is a differentiable surrogate
  (``hard + (soft - stop_gradient(soft))``); the gradient is whatever autodiff gives downstream.
- **score** (unbiased): the value is a plain sample; the gradient is
  :math:`\frac1N\sum_i (C_i - \frac{1}{N-1}\sum_{j\ne i} C_j)\nabla\log q(z_i)`
  (:func:`loo_advantage`), with :math:`C_i` the cost of particle :math:`i`.
- **antithetic** (unbiased, Bernoulli): pairs :math:`b = 1[u < \sigma(\theta)]`,
  :math:`\tilde b = 1[1 - u < \sigma(\theta)]` (:func:`antithetic_bernoulli`) and the DisARM
  weight of each element (:func:`disarm_weight`).

The registry :data:`ESTIMATORS` maps each public estimator name to its :class:`EstimatorSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
from jax import random
from jax.typing import ArrayLike
from numpyro.distributions import (
    BernoulliLogits,
    BernoulliProbs,
    CategoricalLogits,
    CategoricalProbs,
    Distribution,
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
)

from numpyro_relax.distributions.bits import (
    RelaxedBernoulliStraightThrough,
    StraightThroughBernoulli,
)
from numpyro_relax.distributions.categorical import (
    DecoupledStraightThroughGumbelSoftmax,
    OneHotCategorical,
    RelaxedOneHotCategoricalStraightThrough,
)
from numpyro_relax.distributions.util import logit_uniform as logit_uniform  # the noise, once
from numpyro_relax.distributions.util import one_hot_argmax, straight_through
from numpyro_relax.distributions.util import uniform as uniform
from numpyro_relax.infer.pathwise import _gst, _gumbel_rao, _reinmax

__all__ = [
    "ESTIMATORS",
    "EstimatorSpec",
    "antithetic_bernoulli",
    "disarm_weight",
    "loo_advantage",
    "site_family",
]

FAMILIES = ("bernoulli", "onehot", "categorical")


# --------------------------------------------------------------------------------------------
# the discrete law behind a (possibly wrapped) NumPyro distribution
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteFamily:
    """The discrete law of a site: its family, its logits and its mask.

    ``logits`` and ``mask`` are right-aligned with ``fn.shape()`` (plus the category axis of the
    logits for ``"onehot"``/``"categorical"``), so they broadcast against a value of shape
    ``sample_shape + fn.shape()``; ``mask`` is ``None`` when nothing is masked.
    """

    family: str
    logits: jax.Array
    mask: jax.Array | None


def site_family(fn: Distribution) -> SiteFamily | None:
    """The :class:`SiteFamily` of ``fn``: ``Bernoulli``, ``Categorical`` or
    :class:`~numpyro_relax.OneHotCategorical`, possibly wrapped (any number of times, in any
    order) by ``ExpandedDistribution`` (plates, ``expand``), ``Independent`` (``to_event``) and
    ``MaskedDistribution`` (``mask``); ``None`` for any other distribution."""
    mask = None
    while True:
        if isinstance(fn, (BernoulliLogits, BernoulliProbs)):
            return SiteFamily("bernoulli", fn.logits, mask)
        if isinstance(fn, (CategoricalLogits, CategoricalProbs)):
            return SiteFamily("categorical", fn.logits, _with_category_axis(mask))
        if isinstance(fn, OneHotCategorical):
            return SiteFamily("onehot", fn.logits, mask)
        if isinstance(fn, MaskedDistribution):
            m = fn._mask  # bool or an array that broadcasts to fn.batch_shape
            if m is not True:
                m = jnp.broadcast_to(jnp.asarray(m, bool), fn.batch_shape)
                m = m.reshape(fn.batch_shape + (1,) * len(fn.event_shape))
                mask = m if mask is None else jnp.logical_and(mask, m)
        elif not isinstance(fn, (ExpandedDistribution, Independent)):
            return None
        fn = fn.base_dist


def _with_category_axis(mask: jax.Array | None) -> jax.Array | None:
    return None if mask is None else mask[..., None]


# --------------------------------------------------------------------------------------------
# score function and antithetic primitives
# --------------------------------------------------------------------------------------------


def loo_advantage(costs: jax.Array) -> jax.Array:
    r"""Leave-one-out advantages over the leading (particle) axis,
    :math:`C_i - \frac{1}{N-1}\sum_{j \neq i} C_j` (Kool et al., 2019).

    The baseline of particle :math:`i` does not depend on particle :math:`i`, so
    :math:`\frac1N\sum_i A_i \nabla \log q(z_i)` is unbiased; it equals the log-variance (VarGrad)
    gradient :math:`\frac{1}{N-1}\sum_i (C_i - \bar C)\nabla\log q(z_i)` of Richter et al. (2020).
    Needs :math:`N \geq 2`.
    """
    n = costs.shape[0]
    return costs - (jnp.sum(costs, axis=0) - costs) / (n - 1)


def antithetic_bernoulli(logistic: jax.Array, logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    r"""The antithetic pair :math:`b = 1[L < \theta]`, :math:`\tilde b = 1[-L < \theta]` of a
    standard logistic :math:`L = \mathrm{logit}(u)` (so :math:`b = 1[u < \sigma(\theta)]` and
    :math:`\tilde b = 1[1 - u < \sigma(\theta)]`), both exactly Bernoulli(:math:`\sigma(\theta)`),
    compared in logit space; returned in the dtype of ``logits``."""
    b = (logistic < logits).astype(logits.dtype)
    b_anti = (-logistic < logits).astype(logits.dtype)
    return b, b_anti


def disarm_weight(logits: jax.Array, b: jax.Array, b_anti: jax.Array) -> jax.Array:
    r"""Per-element DisARM weight :math:`\tfrac12 (-1)^{\tilde b}\,1[b \neq \tilde b]\,
    \sigma(|\theta|)`: the gradient estimate of element :math:`i` is
    :math:`(f(b) - f(\tilde b))` times it (Dong, Mnih & Tucker, 2020)."""
    sign = 1.0 - 2.0 * b_anti
    return jnp.where(b != b_anti, 0.5 * sign * jax.nn.sigmoid(jnp.abs(logits)), 0.0)


# --------------------------------------------------------------------------------------------
# pathwise surrogates: forward an exact sample, backward a differentiable relaxation
# --------------------------------------------------------------------------------------------


def _st(logits: jax.Array, key: jax.Array, family: str) -> jax.Array:
    r"""Straight-through: :math:`b + (\sigma(\theta) - \mathrm{sg}(\sigma(\theta)))` for bits
    (:math:`\partial z/\partial p = 1`), :math:`b + (\mathrm{softmax}(\theta) -
    \mathrm{sg}(\cdot))` for one-hot (Bengio et al., 2013)."""
    if family == "bernoulli":
        return StraightThroughBernoulli(logits=logits).sample(key)
    g = random.gumbel(key, logits.shape, logits.dtype)
    return straight_through(one_hot_argmax(logits + g), jax.nn.softmax(logits, axis=-1))


def _st_gumbel(logits: jax.Array, key: jax.Array, family: str, temperature: ArrayLike) -> jax.Array:
    r"""Straight-through Gumbel-softmax: forward :math:`H(\theta + g)`, backward the Concrete
    sample :math:`\mathrm{softmax}((\theta + g)/\lambda)` (Jang et al., 2017)."""
    if family == "bernoulli":
        return RelaxedBernoulliStraightThrough(temperature, logits=logits).sample(key)
    return RelaxedOneHotCategoricalStraightThrough(temperature, logits=logits).sample(key)


def _decoupled_st(
    logits: jax.Array,
    key: jax.Array,
    family: str,
    temperature_forward: ArrayLike,
    temperature_backward: ArrayLike,
) -> jax.Array:
    r"""Decoupled straight-through (Shah et al., arXiv:2410.13331): forward an exact sample of
    :math:`\mathrm{softmax}(\theta/\tau_f)`, backward :math:`\mathrm{softmax}((\theta + \tau_f g)
    /\tau_b)`, as :class:`~numpyro_relax.DecoupledStraightThroughGumbelSoftmax`. Bits are its
    two-category case with logits :math:`(0, \theta)`."""
    if family == "bernoulli":
        pair = jnp.stack([jnp.zeros_like(logits), logits], axis=-1)
        d = DecoupledStraightThroughGumbelSoftmax(
            temperature_forward, temperature_backward, logits=pair
        )
        return d.sample(key)[..., 1]
    d = DecoupledStraightThroughGumbelSoftmax(
        temperature_forward, temperature_backward, logits=logits
    )
    return d.sample(key)


# --------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EstimatorSpec:
    """What :class:`~numpyro_relax.infer.TraceDiscrete_ELBO` and the functional estimators need
    to know about one estimator.

    :param name: the public name (``infer={"estimator": name}``).
    :param kind: ``"pathwise"``, ``"score"`` or ``"antithetic"``.
    :param families: the site families it applies to.
    :param unbiased: whether its gradient is unbiased for the discrete objective.
    :param options: the options it takes, with their defaults.
    :param relax: for pathwise estimators, ``relax(logits, key, family, **options) -> value``.
    :param rao_blackwellize: for score estimators, whether the cost of a site is restricted to the
        terms it influences (provenance tracking) or is the whole particle's ELBO.
    :param min_particles: the fewest particles it needs.
    :param summary: one line for error messages and docs.
    """

    name: str
    kind: str
    families: tuple[str, ...]
    unbiased: bool
    options: Mapping[str, Any] = field(default_factory=dict)
    relax: Callable[..., jax.Array] | None = None
    rao_blackwellize: bool = True
    min_particles: int = 1
    summary: str = ""


#: The registry: each public estimator name (``TraceDiscrete_ELBO(estimator=name)``,
#: ``infer={"estimator": name}``) and its :class:`EstimatorSpec`.
ESTIMATORS: dict[str, EstimatorSpec] = {
    "st": EstimatorSpec(
        "st",
        "pathwise",
        ("bernoulli", "onehot"),
        unbiased=False,
        relax=_st,
        summary="straight-through (identity for bits, softmax probabilities for one-hot)",
    ),
    "st-gumbel": EstimatorSpec(
        "st-gumbel",
        "pathwise",
        ("bernoulli", "onehot"),
        unbiased=False,
        options={"temperature": 1.0},
        relax=_st_gumbel,
        summary="straight-through Gumbel-softmax",
    ),
    "decoupled-st": EstimatorSpec(
        "decoupled-st",
        "pathwise",
        ("bernoulli", "onehot"),
        unbiased=False,
        options={"temperature_forward": 1.0, "temperature_backward": 1.0},
        relax=_decoupled_st,
        summary="decoupled straight-through Gumbel-softmax",
    ),
    "reinmax": EstimatorSpec(
        "reinmax",
        "pathwise",
        ("bernoulli", "onehot"),
        unbiased=False,
        options={"temperature": 1.0},
        relax=_reinmax,
        summary="ReinMax (second-order straight-through; temperature >= 1)",
    ),
    "gst": EstimatorSpec(
        "gst",
        "pathwise",
        ("bernoulli", "onehot"),
        unbiased=False,
        options={"temperature": 1.0, "gap": 1.0, "adaptive": False},
        relax=_gst,
        summary="gapped straight-through (fixed or adaptive gap)",
    ),
    "gumbel-rao": EstimatorSpec(
        "gumbel-rao",
        "pathwise",
        ("bernoulli", "onehot"),
        unbiased=False,
        options={"temperature": 1.0, "num_conditionals": 10},
        relax=_gumbel_rao,
        summary="Gumbel-Rao (straight-through Gumbel-softmax, Rao-Blackwellised over the noise)",
    ),
    "loo": EstimatorSpec(
        "loo",
        "score",
        ("bernoulli", "onehot", "categorical"),
        unbiased=True,
        rao_blackwellize=True,
        min_particles=2,
        summary="score function with leave-one-out baselines, Rao-Blackwellised",
    ),
    "vargrad": EstimatorSpec(
        "vargrad",
        "score",
        ("bernoulli", "onehot", "categorical"),
        unbiased=True,
        rao_blackwellize=False,
        min_particles=2,
        summary="VarGrad (log-variance loss; leave-one-out on the whole ELBO)",
    ),
    "disarm": EstimatorSpec(
        "disarm",
        "antithetic",
        ("bernoulli",),
        unbiased=True,
        summary="DisARM antithetic pairs",
    ),
}


def estimators_for(family: str) -> list[str]:
    """The names of the estimators that apply to ``family``."""
    return [name for name, spec in ESTIMATORS.items() if family in spec.families]


def get_spec(name: Any, where: str) -> EstimatorSpec:
    """The spec of estimator ``name``; ``ValueError`` mentioning ``where`` if unknown."""
    spec = ESTIMATORS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(
            f"{where}: unknown estimator {name!r}; the estimators are {sorted(ESTIMATORS)}."
        )
    return spec


def resolve_options(spec: EstimatorSpec, given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``spec.options`` updated by ``given``; ``ValueError`` for an option ``spec`` does not take."""
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        raise ValueError(
            f"{where}: estimator {spec.name!r} takes no option(s) {unknown}"
            + (f"; its options are {sorted(spec.options)}." if spec.options else ".")
        )
    return {**spec.options, **given}


# --------------------------------------------------------------------------------------------
# exact per-element terms of a discrete law (for the analytic entropy of pathwise sites)
# --------------------------------------------------------------------------------------------


def discrete_entropy(fn: Distribution) -> jax.Array:
    """The entropy of a (possibly wrapped) ``Bernoulli``/``Categorical``/``OneHotCategorical``,
    with ``fn``'s batch shape; masked elements contribute zero."""
    if isinstance(fn, MaskedDistribution):
        h = discrete_entropy(fn.base_dist)
        if fn._mask is True:
            return h
        return jnp.where(fn._mask, h, 0.0)
    if isinstance(fn, ExpandedDistribution):
        return jnp.broadcast_to(discrete_entropy(fn.base_dist), fn.batch_shape)
    if isinstance(fn, Independent):
        h = discrete_entropy(fn.base_dist)
        return jnp.sum(h, axis=tuple(range(-fn.reinterpreted_batch_ndims, 0)))
    if isinstance(fn, (BernoulliLogits, BernoulliProbs)):
        theta = fn.logits
        return jax.nn.softplus(theta) - theta * jax.nn.sigmoid(theta)
    logp = jax.nn.log_softmax(fn.logits, axis=-1)
    p = jnp.exp(logp)
    return -jnp.sum(jnp.where(p > 0, p * logp, 0.0), axis=-1)
