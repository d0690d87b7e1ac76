"""Relaxation as an inference-time choice: reparameterisers for :class:`numpyro.handlers.reparam`.

A model written with the discrete laws it means (``dist.Bernoulli``,
:class:`~numpyro_relax.OneHotCategorical`) can be fitted as its Concrete relaxation without
editing it: :class:`RelaxReparam` swaps the site's distribution for its relaxation at fit time,
in whichever program (model, guide, or both) the handler wraps. :class:`GumbelSoftmaxReparam`
rewrites a relaxed one-hot site as parameter-free Gumbel noise plus a deterministic softmax, so
that a unimodal autoguide over the noise can represent a posterior with mass at several
vertices of the simplex (Pyro's ``GumbelSoftmaxReparam``, pyro-ppl/pyro#2693).

Both leave observed sites alone, as NumPyro's own reparameterisers are meant for latent sites;
both unwrap ``ExpandedDistribution`` (plates, ``.expand``), ``Independent`` (``.to_event``) and
``MaskedDistribution`` (``.mask``) and wrap the result the same way.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.typing import ArrayLike
from numpyro.distributions import Distribution
from numpyro.distributions.transforms import SigmoidTransform
from numpyro.infer.reparam import Reparam

from numpyro_relax.distributions import (
    ExpRelaxedOneHotCategorical,
    LogitRelaxedBernoulli,
    OneHotCategorical,
    RelaxedBernoulliStraightThrough,
    RelaxedOneHotCategorical,
    RelaxedOneHotCategoricalStraightThrough,
)
from numpyro_relax.distributions.util import all_concrete, one_hot_argmax, straight_through

__all__ = ["GumbelSoftmaxReparam", "RelaxReparam", "relaxed_bernoulli"]

_Wrappers = list[tuple[str, Any]]


def _unwrap(fn: Distribution) -> tuple[Distribution, _Wrappers]:
    """Strip ``ExpandedDistribution`` / ``Independent`` / ``MaskedDistribution`` layers.

    Returns the innermost distribution and the layers, outermost first, so that
    :func:`_rewrap` rebuilds the same nesting around another base distribution.
    """
    wrappers: _Wrappers = []
    while True:
        if isinstance(fn, dist.ExpandedDistribution):
            wrappers.append(("expand", fn.batch_shape))
        elif isinstance(fn, dist.Independent):
            wrappers.append(("to_event", fn.reinterpreted_batch_ndims))
        elif isinstance(fn, dist.MaskedDistribution):
            wrappers.append(("mask", fn._mask))
        else:
            return fn, wrappers
        fn = fn.base_dist


def _rewrap(fn: Distribution, wrappers: _Wrappers) -> Distribution:
    """Apply the layers recorded by :func:`_unwrap` to ``fn``, innermost first."""
    for kind, arg in reversed(wrappers):
        if kind == "expand":
            fn = fn.expand(arg)
        elif kind == "to_event":
            fn = fn.to_event(arg)
        else:
            fn = fn.mask(arg)
    return fn


def _bernoulli_args(fn: Distribution) -> dict[str, jax.Array]:
    """``{"probs": ...}`` or ``{"logits": ...}``, whichever parameterises the Bernoulli."""
    if isinstance(fn, dist.BernoulliProbs):
        return {"probs": fn.probs}
    return {"logits": fn.logits}


def _one_hot_args(fn: OneHotCategorical) -> dict[str, jax.Array]:
    """The ``probs`` of a :class:`OneHotCategorical` built from them, else its ``logits``."""
    if "probs" in fn.__dict__:  # set by the constructor; otherwise a lazy property
        return {"probs": fn.probs}
    return {"logits": fn.logits}


def relaxed_bernoulli(
    temperature: ArrayLike,
    probs: ArrayLike | None = None,
    logits: ArrayLike | None = None,
) -> dist.TransformedDistribution:
    r"""The binary Concrete law on :math:`(0, 1)`, as a sigmoid of
    :class:`~numpyro_relax.LogitRelaxedBernoulli`.

    .. math::
        z = \sigma\big((\ell + L)/\tau\big), \qquad L \sim \mathrm{Logistic}(0, 1),

    with density (Maddison et al., 2017, appendix B)

    .. math::
        \log p(z) = \log\tau + \log\sigma(\tau y - \ell) + \log\sigma(\ell - \tau y)
                    - \log z - \log(1 - z), \qquad y = \operatorname{logit} z.

    A ``TransformedDistribution``: a sample drawn in a NumPyro trace carries its logit
    :math:`y` as an intermediate, and ``log_prob`` uses it, so the log density of a sampled
    site stays exact where :math:`z` rounds to 0 or 1 in float32. A value without
    intermediates (e.g. a model site replayed from a guide) is scored from
    :math:`\operatorname{logit} z`, which is exact while :math:`z` does not round.

    :param temperature: positive temperature :math:`\tau`.
    :param probs: probability of a one (exactly one of ``probs``/``logits``).
    :param logits: log-odds :math:`\ell`.
    :return: a distribution with support the unit interval.
    """
    base = LogitRelaxedBernoulli(temperature, probs=probs, logits=logits)
    return dist.TransformedDistribution(base, SigmoidTransform())


def _check_temperature(temperature: ArrayLike) -> ArrayLike:
    """Reject temperatures that are not numbers, and concrete ones that are not positive."""
    try:
        dtype = jnp.result_type(temperature)
    except TypeError:
        dtype = None
    if (
        isinstance(temperature, (bool, np.bool_))
        or dtype is None
        or not jnp.issubdtype(dtype, jnp.number)
    ):
        raise ValueError(
            f"RelaxReparam: `temperature` must be a number or an array, got {temperature!r}."
        )
    if all_concrete(jnp.asarray(temperature) > 0) is False:
        raise ValueError(f"RelaxReparam: `temperature` must be positive, got {temperature}.")
    return temperature


class RelaxReparam(Reparam):
    r"""Replace a discrete site by its Concrete relaxation (or a straight-through version of it).

    ============================================  ========================================================
    site distribution                             relaxation (``straight_through=False`` / ``True``)
    ============================================  ========================================================
    ``dist.Bernoulli`` (logits or probs)          :func:`relaxed_bernoulli` (binary Concrete on
                                                  :math:`(0, 1)`) / :class:`~numpyro_relax.RelaxedBernoulliStraightThrough`
    :class:`~numpyro_relax.OneHotCategorical`     :class:`~numpyro_relax.RelaxedOneHotCategorical` /
                                                  :class:`~numpyro_relax.RelaxedOneHotCategoricalStraightThrough`
    ============================================  ========================================================

    The relaxed law has the same parameters as the discrete one and the given temperature
    :math:`\tau`; as :math:`\tau \to 0` it tends to the discrete law:

    .. math::
        z = \operatorname{softmax}\big((\ell + g)/\tau\big), \quad g_k \sim \mathrm{Gumbel}(0, 1)
        \qquad\text{(one-hot)}; \qquad
        z = \sigma\big((\ell + L)/\tau\big), \quad L \sim \mathrm{Logistic}(0, 1)
        \qquad\text{(bits)}.

    The site keeps its name, value shape and place in the program (plates,
    ``.expand``, ``.to_event`` and ``.mask`` are kept), and its value stays in :math:`[0, 1]`
    (bits) or on the simplex (one-hot), so the rest of the program runs unchanged; its log
    density is the exact Concrete density (the straight-through versions score the discrete
    pmf, see their docs). It relaxes the site in the program the handler wraps. The usual use is
    Maddison et al.'s relaxed objective: relax the site in the model *and* in the guide and fit
    with :class:`~numpyro.infer.Trace_ELBO` (both sites are then reparameterised)::

        config = {"z": RelaxReparam(0.5)}
        relaxed_model = handlers.reparam(model, config=config)
        relaxed_guide = handlers.reparam(guide, config=config)
        svi = SVI(relaxed_model, relaxed_guide, optax.adam(1e-2), Trace_ELBO())

    The temperature may be a traced value, so SVI can anneal it: e.g. compute it from a step
    count passed to the model and the guide, and apply the handler inside them
    (``with handlers.reparam(config={"z": RelaxReparam(tau)}): ...``), or make it a
    ``numpyro.param``. It must broadcast with the batch shape of the discrete distribution the
    site wraps (for one-hot sites, without the category axis).

    In the guide, a sampled site keeps its log-space intermediate, so its log density is exact
    even where the value rounds to a vertex in float32; NumPyro's ``replay`` does not carry
    intermediates, so the model's copy of the site is scored from the value, which is exact
    only while the value does not round (as for a hand-written relaxed model).

    Observed sites are left alone (a likelihood keeps its discrete law). An integer
    ``dist.Categorical`` site cannot be relaxed (its value is an index, not a point of the
    simplex) and is a ``ValueError``, as is any other distribution; both name the site.

    :param temperature: positive temperature :math:`\tau` (a number or an array; may be traced).
    :param straight_through: relax to the straight-through estimators (forward value exactly
        discrete, gradient of the relaxed sample) instead of the Concrete law.

    **References:**

    1. *The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables*,
       C. J. Maddison, A. Mnih, Y. W. Teh (ICLR 2017).
    2. *Categorical Reparameterization with Gumbel-Softmax*, E. Jang, S. Gu, B. Poole (ICLR 2017).
    3. Pyro issue #2689, *RelaxReparam* (relax a model only for the sake of optimisation).
    """

    def __init__(self, temperature: ArrayLike, straight_through: bool = False) -> None:
        self.temperature = _check_temperature(temperature)
        self.straight_through = bool(straight_through)

    def __call__(
        self, name: str, fn: Distribution, obs: ArrayLike | None
    ) -> tuple[Distribution, ArrayLike | None]:
        if obs is not None:
            return fn, obs
        base, wrappers = _unwrap(fn)
        if isinstance(base, (dist.CategoricalLogits, dist.CategoricalProbs)):
            raise ValueError(
                f"RelaxReparam: site '{name}' is an integer Categorical ({type(base).__name__}); "
                "its value is an index, which has no continuous relaxation. Sample it as a "
                "one-hot vector with numpyro_relax.OneHotCategorical (value @ table instead of "
                "table[value]) to relax it."
            )
        if not isinstance(base, (dist.BernoulliLogits, dist.BernoulliProbs, OneHotCategorical)):
            raise ValueError(
                f"RelaxReparam: site '{name}' has distribution {type(base).__name__}, which it "
                "cannot relax; it relaxes Bernoulli (BernoulliLogits, BernoulliProbs) and "
                "numpyro_relax.OneHotCategorical sites."
            )
        t = self.temperature
        try:
            if isinstance(base, OneHotCategorical):
                cls = (
                    RelaxedOneHotCategoricalStraightThrough
                    if self.straight_through
                    else RelaxedOneHotCategorical
                )
                relaxed = cls(t, **_one_hot_args(base))
            elif self.straight_through:
                relaxed = RelaxedBernoulliStraightThrough(t, **_bernoulli_args(base))
            else:
                relaxed = relaxed_bernoulli(t, **_bernoulli_args(base))
            return _rewrap(relaxed, wrappers), None
        except ValueError as e:
            raise ValueError(
                f"RelaxReparam: at site '{name}', a temperature of shape {jnp.shape(t)} does "
                f"not broadcast with the batch shape {base.batch_shape} of its "
                f"{type(base).__name__} (site batch shape {fn.batch_shape}): {e}"
            ) from e


class GumbelSoftmaxReparam(Reparam):
    r"""Rewrite a relaxed one-hot site as Gumbel noise and a deterministic softmax.

    A site ``name`` with law :class:`~numpyro_relax.RelaxedOneHotCategorical`
    :math:`(\tau, \ell)` becomes

    .. math::
        g \sim \mathrm{Gumbel}(0, 1)^K \ \text{(site ``name_gumbel``)}, \qquad
        z = \operatorname{softmax}\big((\ell + g)/\tau\big) \ \text{(deterministic site ``name``)},

    which is how the Concrete law is defined, so the value has exactly the law it had before
    (the reparameterisation changes the coordinates, not the model). The posterior of a relaxed
    site often has mass near several vertices of the simplex, which a unimodal guide on the
    simplex (e.g. :class:`~numpyro.infer.autoguide.AutoNormal` through the stick-breaking
    bijection) cannot represent; in the Gumbel coordinates the same posterior is a tilted
    Gumbel law with one mode, and a Normal guide on :math:`g` pushed through the steep softmax
    puts mass at several vertices. This adds one latent dimension per event (:math:`K` noise
    variables for :math:`K - 1` free coordinates).

    Also accepts :class:`~numpyro_relax.ExpRelaxedOneHotCategorical` (the value is
    :math:`\operatorname{log\_softmax}((\ell + g)/\tau)`) and
    :class:`~numpyro_relax.RelaxedOneHotCategoricalStraightThrough` (the value is the
    straight-through one-hot of the same :math:`g`). Compose it with :class:`RelaxReparam` to
    fit a model written with :class:`~numpyro_relax.OneHotCategorical` (the inner handler runs
    first)::

        relaxed = handlers.reparam(model, config={"z": RelaxReparam(0.5)})
        model_g = handlers.reparam(relaxed, config={"z": GumbelSoftmaxReparam()})
        guide = AutoNormal(model_g)

    Observed sites are left alone: the map from :math:`g` to :math:`z` is not invertible, and
    an observed relaxed site keeps its exact Concrete density. Any other distribution is a
    ``ValueError`` naming the site. Under ``.mask`` the noise site carries the same mask.

    **References:**

    1. *The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables*,
       C. J. Maddison, A. Mnih, Y. W. Teh (ICLR 2017).
    2. *Categorical Reparameterization with Gumbel-Softmax*, E. Jang, S. Gu, B. Poole (ICLR 2017).
    3. Pyro pull request #2693, ``GumbelSoftmaxReparam``.
    """

    def __call__(
        self, name: str, fn: Distribution, obs: ArrayLike | None
    ) -> tuple[Distribution | None, ArrayLike | None]:
        if obs is not None:
            return fn, obs
        base, wrappers = _unwrap(fn)
        if not isinstance(base, ExpRelaxedOneHotCategorical):
            raise ValueError(
                f"GumbelSoftmaxReparam: site '{name}' has distribution {type(base).__name__}; "
                "it reparameterises numpyro_relax.RelaxedOneHotCategorical (and its "
                "ExpRelaxed and StraightThrough versions). For a OneHotCategorical site, apply "
                "RelaxReparam first."
            )
        logits = base.logits
        noise = dist.Gumbel(jnp.zeros_like(logits), 1.0).to_event(1)
        g = numpyro.sample(f"{name}_gumbel", _rewrap(noise, wrappers))
        y = jax.nn.log_softmax((logits + g) / base.temperature[..., None], axis=-1)
        if isinstance(base, RelaxedOneHotCategoricalStraightThrough):
            value = straight_through(one_hot_argmax(y), jnp.exp(y))
        elif isinstance(base, RelaxedOneHotCategorical):
            value = jnp.exp(y)
        else:
            value = y
        return None, value
