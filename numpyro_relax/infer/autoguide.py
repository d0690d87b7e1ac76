"""An automatic guide for models with discrete latent sites.

NumPyro's autoguides refuse discrete latent sites (their prototype transforms every latent site
to an unconstrained space), and so does :class:`~numpyro.infer.autoguide.AutoGuideList`, which
is built from them. :class:`AutoDiscrete` gives every discrete latent site of a model a
mean-field discrete guide with learnable logits, and hands the other latent sites to a NumPyro
autoguide of the user's choice. Fit it with an ELBO that estimates gradients for discrete guide
sites, e.g. :class:`~numpyro_relax.infer.TraceDiscrete_ELBO`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist
from jax import random
from numpyro import handlers
from numpyro.distributions.util import periodic_repeat
from numpyro.infer import Predictive
from numpyro.infer.autoguide import (
    AutoDAIS,
    AutoGuide,
    AutoLaplaceApproximation,
    AutoSemiDAIS,
    AutoSurrogateLikelihoodDAIS,
)

from numpyro_relax.distributions import OneHotCategorical

__all__ = ["AutoDiscrete"]

# Guides that evaluate the model's density themselves: the discrete sites would be frozen at
# the prototype's values there.
_REFUSED = (AutoDAIS, AutoSemiDAIS, AutoSurrogateLikelihoodDAIS, AutoLaplaceApproximation)


class _DiscreteSite(NamedTuple):
    """What the guide needs to know about one discrete latent site of the model."""

    family: str  # "bernoulli", "categorical" or "onehot"
    event_dim: int  # event dims of the model site (after .to_event)
    param_event_dim: int  # dims of the logits right of the plates
    init_logits: jax.Array  # full (not subsampled) size
    cond_indep_stack: list


def _base(fn: dist.Distribution) -> dist.Distribution:
    while isinstance(fn, (dist.ExpandedDistribution, dist.Independent, dist.MaskedDistribution)):
        fn = fn.base_dist
    return fn


def _family(name: str, fn: dist.Distribution) -> str:
    base = _base(fn)
    if isinstance(base, (dist.BernoulliLogits, dist.BernoulliProbs)):
        return "bernoulli"
    if isinstance(base, (dist.CategoricalLogits, dist.CategoricalProbs)):
        return "categorical"
    if isinstance(base, OneHotCategorical):
        return "onehot"
    raise ValueError(
        f"AutoDiscrete: discrete latent site '{name}' has distribution {type(base).__name__}; "
        "AutoDiscrete has guides for Bernoulli, Categorical and numpyro_relax.OneHotCategorical "
        "sites only. Write this site's guide by hand, or sample it as one of those."
    )


def _prior_logits(family: str, fn: dist.Distribution) -> jax.Array:
    """The prior's logits, broadcast to the shape of the guide's logits parameter."""
    base = _base(fn)
    shape = fn.batch_shape + fn.event_shape
    if family == "categorical":
        shape = shape + base.logits.shape[-1:]
    return jnp.broadcast_to(base.logits, shape)


def _guide_dist(site: _DiscreteSite, logits: jax.Array) -> dist.Distribution:
    if site.family == "bernoulli":
        return dist.Bernoulli(logits=logits).to_event(site.event_dim)
    if site.family == "categorical":
        return dist.Categorical(logits=logits).to_event(site.event_dim)
    return OneHotCategorical(logits=logits).to_event(site.event_dim - 1)


def _mode(site: _DiscreteSite, logits: jax.Array) -> jax.Array:
    if site.family == "bernoulli":
        return (logits > 0).astype(logits.dtype)
    index = jnp.argmax(logits, axis=-1)
    if site.family == "categorical":
        return index
    return jax.nn.one_hot(index, logits.shape[-1], dtype=logits.dtype)


def _quantiles(site: _DiscreteSite, logits: jax.Array, q: jax.Array) -> jax.Array:
    """Inverse CDF at ``q`` (leading axis) of the guide's law, categories in index order."""
    if site.family == "bernoulli":
        q = q.reshape((-1,) + (1,) * logits.ndim)
        return (q > jax.nn.sigmoid(-logits)).astype(logits.dtype)
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    q = q.reshape((-1,) + (1,) * logits.ndim)
    num_categories = logits.shape[-1]
    index = jnp.minimum(jnp.sum(cdf < q, axis=-1), num_categories - 1)
    if site.family == "categorical":
        return index
    return jax.nn.one_hot(index, num_categories, dtype=logits.dtype)


class AutoDiscrete(AutoGuide):
    r"""Mean-field discrete guides for a model's discrete latent sites, and a NumPyro autoguide
    for the others.

    The guide is

    .. math::
        q(z, \theta) = \prod_{s\ \text{discrete}} q_{\phi_s}(z_s) \; q_\psi(\theta),

    with, for each discrete latent site :math:`s` (an unobserved sample site whose support is
    discrete), a guide site of the same name, in the same plates, with its own logits
    parameter ``{name}_{prefix}_logits`` of the site's full shape:

    ============================================  ==========================================
    model site                                    guide site
    ============================================  ==========================================
    ``dist.Bernoulli``                            ``dist.Bernoulli(logits)``, logits of the
                                                  site's shape
    ``dist.Categorical`` (:math:`K` categories)   ``dist.Categorical(logits)``, logits of the
                                                  site's shape :math:`+ (K,)`
    :class:`~numpyro_relax.OneHotCategorical`     ``OneHotCategorical(logits)``
    ============================================  ==========================================

    (``.expand``/``.to_event`` carry over; a subsampled plate gets logits of the plate's full
    size, of which each step uses the subsample, as in NumPyro's ``AutoNormal``). The other
    latent sites get :math:`q_\psi`, the autoguide ``continuous(model', ...)`` built on the
    model ``model'`` in which the discrete sites are observed (``handlers.condition``) at a
    prototype draw: the discrete values only fix the prototype's structure, since a mean-field
    guide of the continuous sites does not depend on them. At each call the guide samples the
    discrete sites, then runs the continuous autoguide, in the same plates (same subsample).
    The ELBO is therefore that of the product guide; model and guide traces are matched site by
    site, so any ELBO that handles discrete guide sites applies, e.g.
    ``TraceDiscrete_ELBO(estimator="loo", num_particles=8)``.

    **Initialisation.** The logits start at the prior's logits, evaluated where the continuous
    autoguide starts (its prototype trace), as Pyro's ``AutoDiscreteParallel`` starts from the
    prior's probabilities: :math:`q(z_s) = p(z_s \mid \theta_0)`, so a site whose data say
    nothing stays at its prior. Under subsampling the prototype's logits are repeated
    periodically to the full size.

    :meth:`sample_posterior`, :meth:`median` and :meth:`quantiles` combine the two parts; the
    model's ``numpyro.deterministic`` sites are recomputed from the combined draws in
    :meth:`sample_posterior`. It works with :class:`~numpyro.infer.Predictive` (``guide=``) and
    :func:`numpyro_relax.diagnostics.svi_to_arviz`.

    :param model: a NumPyro model.
    :param continuous: a NumPyro autoguide class (e.g. ``AutoNormal``, ``AutoDelta``,
        ``AutoDiagonalNormal``) or a callable ``(model, **kwargs) -> AutoGuide``, for the latent
        sites that are not discrete. ``None`` if the model has none. Guides that evaluate the
        model's density themselves (``AutoDAIS``, ``AutoSemiDAIS``,
        ``AutoSurrogateLikelihoodDAIS``, ``AutoLaplaceApproximation``) are refused.
    :param str prefix: prefix of the parameter names (also passed to ``continuous``).
    :param init_loc_fn: the continuous autoguide's per-site initialisation; ``None`` keeps its
        own default.
    :param create_plates: as in NumPyro's autoguides: a function of the model's arguments
        returning the plates to use (e.g. for subsampling); shared with the continuous part.
    :param infer: per-site ``infer`` dicts for the discrete guide sites, e.g.
        ``{"z": {"estimator": "disarm"}}`` to choose ``TraceDiscrete_ELBO``'s estimator there.
    :param kwargs: further keyword arguments of ``continuous`` (e.g. ``init_scale``).
    :raises ValueError: (at the first call) for a discrete latent site with a distribution
        other than the three above, or marked for enumeration, and for continuous latent sites
        when ``continuous`` is ``None``; each names the site.

    **References:**

    1. Pyro's ``AutoDiscreteParallel`` (mean-field discrete guides with the prior as start).
    2. NumPyro issue #1713, discrete latent sites in autoguides.
    """

    def __init__(
        self,
        model: Callable,
        continuous: Callable[..., AutoGuide] | None = None,
        *,
        prefix: str = "auto",
        init_loc_fn: Callable | None = None,
        create_plates: Callable | None = None,
        infer: Mapping[str, dict] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(continuous, AutoGuide):
            raise TypeError(
                "AutoDiscrete: pass the autoguide class (e.g. continuous=AutoNormal), not an "
                "instance: AutoDiscrete builds it on the model with the discrete sites observed."
            )
        if continuous is not None and not callable(continuous):
            raise TypeError(
                f"AutoDiscrete: `continuous` must be an autoguide class, got {continuous!r}."
            )
        if isinstance(continuous, type) and issubclass(continuous, _REFUSED):
            raise ValueError(
                f"AutoDiscrete: continuous={continuous.__name__} evaluates the model's density "
                "itself, where the discrete sites would be frozen; use a guide that does not "
                "(AutoNormal, AutoDelta, AutoDiagonalNormal, AutoMultivariateNormal, ...)."
            )
        self.continuous = continuous
        self._continuous_init_loc_fn = init_loc_fn
        self._continuous_kwargs = kwargs
        self._infer = {k: dict(v) for k, v in (infer or {}).items()}
        self._discrete_sites: dict[str, _DiscreteSite] = {}
        self._continuous_sites: list[str] = []
        self._deterministic_sites: list[str] = []
        self._continuous_guide: AutoGuide | None = None
        self._plates: dict | None = None
        super().__init__(model, prefix=prefix, create_plates=create_plates)
        if init_loc_fn is not None:
            self.init_loc_fn = init_loc_fn

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_plates", None)
        return state

    @property
    def continuous_guide(self) -> AutoGuide | None:
        """The autoguide of the continuous latent sites (``None`` before the first call or when
        the model has none)."""
        return self._continuous_guide

    def _setup_prototype(self, *args: Any, **kwargs: Any) -> None:
        rng_key = numpyro.prng_key()
        with handlers.block():
            trace = handlers.trace(handlers.seed(self.model, rng_key)).get_trace(*args, **kwargs)
        self.prototype_trace = trace
        self._prototype_frames = {}
        self._prototype_frame_full_sizes = {}
        self._discrete_sites, self._continuous_sites, self._deterministic_sites = {}, [], []
        discrete_values = {}
        for name, site in trace.items():
            if site["type"] == "plate":
                self._prototype_frame_full_sizes[name] = site["args"][0]
            elif site["type"] == "deterministic":
                self._deterministic_sites.append(name)
            if site["type"] != "sample" or site["is_observed"]:
                continue
            for frame in site["cond_indep_stack"]:
                self._prototype_frames.setdefault(frame.name, frame)
            if not site["fn"].support.is_discrete:
                self._continuous_sites.append(name)
                continue
            _family(name, site["fn"])  # raises for unsupported distributions
            if (site.get("infer") or {}).get("enumerate") is not None:
                raise ValueError(
                    f"AutoDiscrete: discrete latent site '{name}' has infer={{'enumerate': ...}}; "
                    "AutoDiscrete samples it from a guide. Remove the setting "
                    "(config_enumerate), or enumerate it with TraceEnum_ELBO and a guide of the "
                    "other sites."
                )
            discrete_values[name] = site["value"]

        prototype = trace
        if self._continuous_sites:
            if self.continuous is None:
                raise ValueError(
                    f"AutoDiscrete: the model has latent sites that are not discrete "
                    f"({', '.join(repr(n) for n in self._continuous_sites)}); pass an autoguide "
                    "for them, e.g. AutoDiscrete(model, continuous=AutoNormal)."
                )
            self._continuous_guide = self._build_continuous(discrete_values)
            self._continuous_guide._setup_prototype(*args, **kwargs)
            prototype = self._continuous_guide.prototype_trace

        for name in discrete_values:
            site = prototype[name]
            family = _family(name, site["fn"])
            init = _prior_logits(family, site["fn"])
            param_event_dim = site["fn"].event_dim + (family == "categorical")
            for frame in site["cond_indep_stack"]:
                full_size = self._prototype_frame_full_sizes[frame.name]
                if full_size != frame.size:
                    init = periodic_repeat(init, full_size, frame.dim - param_event_dim)
            self._discrete_sites[name] = _DiscreteSite(
                family, site["fn"].event_dim, param_event_dim, init, site["cond_indep_stack"]
            )

    def _build_continuous(self, discrete_values: dict[str, jax.Array]) -> AutoGuide:
        kwargs = dict(self._continuous_kwargs)
        kwargs["prefix"] = self.prefix
        if self._continuous_init_loc_fn is not None:
            kwargs["init_loc_fn"] = self._continuous_init_loc_fn
        try:
            accepts_plates = "create_plates" in inspect.signature(self.continuous).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            accepts_plates = False
        if accepts_plates:
            kwargs["create_plates"] = self._shared_plates
        conditioned = handlers.condition(self.model, data=discrete_values)
        return self.continuous(conditioned, **kwargs)

    def _shared_plates(self, *args: Any, **kwargs: Any) -> list:
        """The plates of the current call, so that both parts use the same subsample."""
        return list(self._plates.values()) if self._plates else []

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, jax.Array]:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        plates = self._create_plates(*args, **kwargs)
        result = {}
        for name, site in self._discrete_sites.items():
            with ExitStack() as stack:
                for frame in site.cond_indep_stack:
                    stack.enter_context(plates[frame.name])
                logits = numpyro.param(
                    f"{name}_{self.prefix}_logits",
                    site.init_logits,
                    event_dim=site.param_event_dim,
                )
                result[name] = numpyro.sample(
                    name, _guide_dist(site, logits), infer=dict(self._infer.get(name, {}))
                )
        if self._continuous_guide is not None:
            self._plates = plates
            try:
                result.update(self._continuous_guide(*args, **kwargs))
            finally:
                self._plates = None
        return result

    def _logits(self, params: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {name: params[f"{name}_{self.prefix}_logits"] for name in self._discrete_sites}

    def _continuous_part(self, values: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {k: v for k, v in values.items() if k in self._continuous_sites}

    def sample_posterior(
        self,
        rng_key: jax.Array,
        params: Mapping[str, jax.Array],
        *args: Any,
        sample_shape: Sequence[int] = (),
        **kwargs: Any,
    ) -> dict[str, jax.Array]:
        """Draws from the guide: the discrete sites from their fitted logits, the others from
        the continuous autoguide, and the model's deterministic sites computed from both.

        :param rng_key: a JAX PRNG key.
        :param params: fitted parameters (``svi_result.params``).
        :param args: the model's arguments (for the continuous part and deterministic sites).
        :param sample_shape: leading shape of the draws.
        :param kwargs: the model's keyword arguments.
        :return: a dict from site name to draws of shape ``sample_shape + site shape``.
        """
        sample_shape = tuple(sample_shape)
        key_discrete, key_continuous, key_deterministic = random.split(rng_key, 3)
        logits = self._logits(params)
        keys = random.split(key_discrete, max(len(logits), 1))
        samples = {
            name: _guide_dist(self._discrete_sites[name], value).sample(key, sample_shape)
            for key, (name, value) in zip(keys, logits.items(), strict=False)
        }
        if self._continuous_guide is not None:
            draws = self._continuous_guide.sample_posterior(
                key_continuous, params, *args, sample_shape=sample_shape, **kwargs
            )
            samples.update(self._continuous_part(draws))
        if self._deterministic_sites:
            predictive = Predictive(
                self.model,
                posterior_samples=samples,
                return_sites=self._deterministic_sites,
                batch_ndims=len(sample_shape),
            )
            samples.update(predictive(key_deterministic, *args, **kwargs))
        return samples

    def median(self, params: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The continuous autoguide's median and, at discrete sites, the guide's mode (the most
        probable value; for a Bernoulli the median too, except at probability 1/2).
        Deterministic sites are not included."""
        result = {
            name: _mode(self._discrete_sites[name], value)
            for name, value in self._logits(params).items()
        }
        if self._continuous_guide is not None:
            result.update(self._continuous_part(self._continuous_guide.median(params)))
        return result

    def quantiles(
        self, params: Mapping[str, jax.Array], quantiles: Sequence[float] | jax.Array
    ) -> dict[str, jax.Array]:
        """Quantiles of each latent site's guide marginal (leading axis: ``quantiles``).

        At a discrete site this is the inverse CDF of its guide law; the categories of a
        ``Categorical`` or ``OneHotCategorical`` are ordered by index (one-hot sites give the
        one-hot vector of the index quantile). Deterministic sites are not included.
        """
        q = jnp.asarray(quantiles)
        result = {
            name: _quantiles(self._discrete_sites[name], value, q)
            for name, value in self._logits(params).items()
        }
        if self._continuous_guide is not None:
            result.update(self._continuous_part(self._continuous_guide.quantiles(params, q)))
        return result
