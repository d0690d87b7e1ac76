r"""One ELBO for models and guides with discrete latent sites, the estimator chosen per site.

The model and the guide are ordinary NumPyro programs: discrete sites use NumPyro's
``Bernoulli``/``Categorical`` or :class:`~numpyro_relax.OneHotCategorical` (with ``.expand``,
``.to_event``, ``.mask``, plates, subsampling, ``handlers.scale``, ``obs_mask``). How each
discrete guide site is differentiated is an inference-time choice: the default ``estimator=`` of
:class:`TraceDiscrete_ELBO`, or the site's own ``infer={"estimator": name, **options}``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import random
from jax.lax import stop_gradient
from numpyro import handlers
from numpyro.distributions.kl import kl_divergence
from numpyro.infer.elbo import ELBO, MultiFrameTensor, get_nonreparam_deps
from numpyro.primitives import Messenger
from numpyro.util import check_model_guide_match

from numpyro_relax.infer.checks import check_count
from numpyro_relax.infer.core import (
    ESTIMATORS,
    EstimatorSpec,
    antithetic_bernoulli,
    disarm_weight,
    discrete_entropy,
    estimators_for,
    get_spec,
    logit_uniform,
    loo_advantage,
    resolve_options,
    site_family,
)
from numpyro_relax.infer.util import check_latent_site

try:  # private in NumPyro; only used for the same plate checks TraceGraph_ELBO makes
    from numpyro.util import _validate_model
except ImportError:  # pragma: no cover - depends on the NumPyro version

    def _validate_model(model_trace: dict, plate_warning: str = "loose") -> None:
        return None


__all__ = ["TraceDiscrete_ELBO"]

_FAMILY_NAMES = {
    "bernoulli": "Bernoulli",
    "onehot": "OneHotCategorical",
    "categorical": "Categorical",
    "other": "another discrete or non-reparameterised distribution",
}
_PRESETS = {"loo": "TraceLOO_ELBO", "vargrad": "VarGrad_ELBO", "disarm": "DisARM_ELBO"}


class _Plan(NamedTuple):
    """How one guide site is estimated: its spec, its options and its family."""

    spec: EstimatorSpec
    options: dict[str, Any]
    family: str


def _is_estimated(site: dict) -> bool:
    """A latent guide sample site that needs a discrete-site estimator."""
    if site["type"] != "sample" or site.get("is_observed", False):
        return False
    fn = site["fn"]
    return fn.support.is_discrete or not fn.has_rsample


class _Planner:
    """Decides, for each latent guide site, which estimator applies and with which options.

    Raises ``ValueError`` naming the site for an unknown estimator, an option the estimator does
    not take, an estimator that does not apply to the site's family, and for ``estimator`` set on
    a reparameterised continuous site.
    """

    def __init__(self, owner: str, default: str, options: dict[str, Any]) -> None:
        self.owner = owner
        self.default = default
        self.options = options

    def plan(self, name: str, site: dict) -> _Plan | None:
        infer = dict(site.get("infer") or {})
        if infer.get("enumerate") is not None:
            raise ValueError(
                f"{self.owner}: guide site {name!r} has infer={{'enumerate': ...}}; this ELBO "
                "samples every latent site. Use TraceEnum_ELBO to enumerate, or remove it."
            )
        if not _is_estimated(site):
            if "estimator" in infer:
                raise ValueError(
                    f"{self.owner}: guide site {name!r} ({type(site['fn']).__name__}) is "
                    "continuous and reparameterised; infer={'estimator': ...} applies to discrete "
                    "sites only."
                )
            return None
        where = f"{self.owner}: guide site {name!r}"
        spec = get_spec(infer.pop("estimator", self.default), where)
        infer.pop("enumerate", None)
        site_options = {k: v for k, v in infer.items() if k in _all_options()}
        # the ELBO's options for this estimator, then the site's (spec defaults under both)
        defaults = {k: v for k, v in self.options.items() if k in spec.options}
        options = resolve_options(spec, {**defaults, **site_options}, where)
        info = site_family(site["fn"])
        family = "other" if info is None else info.family
        if family not in spec.families:
            fits = estimators_for(family)
            presets = [_PRESETS[f] for f in fits if f in _PRESETS]
            raise ValueError(
                f"{where} ({type(site['fn']).__name__}) is not "
                f"{' or '.join(_FAMILY_NAMES[f] for f in spec.families)}: estimator "
                f"{spec.name!r} ({spec.summary}) does not apply to it"
                + (
                    "; pathwise estimators need a value the model can differentiate (bits or "
                    "one-hot: use OneHotCategorical instead of an integer Categorical)"
                    if spec.kind == "pathwise"
                    else ""
                )
                + f". The estimators that apply to this site: {fits}"
                + (f" (e.g. {', '.join(presets)})." if presets else ".")
            )
        return _Plan(spec, options, family)


def _all_options() -> set[str]:
    return {k for spec in ESTIMATORS.values() for k in spec.options}


class _EstimatorValues(Messenger):
    """Sets the value of each pathwise / antithetic guide site (placed outside ``seed``, so it
    reads each site's ``rng_key`` and its plate-expanded ``fn``) and records the plan."""

    def __init__(self, fn: Any, planner: _Planner, flip: Any) -> None:
        self.planner = planner
        self.flip = flip
        self.plans: dict[str, _Plan] = {}
        super().__init__(fn)

    def process_message(self, msg: dict) -> None:
        if msg["type"] != "sample" or msg.get("is_observed", False):
            return
        plan = self.planner.plan(msg["name"], msg)
        if plan is None:
            return
        self.plans[msg["name"]] = plan
        if plan.spec.kind == "score" or msg["value"] is not None:
            return
        fn = msg["fn"]
        info = site_family(fn)
        key = msg["kwargs"]["rng_key"]
        shape = tuple(msg["kwargs"].get("sample_shape", ())) + tuple(fn.shape())
        if plan.spec.kind == "pathwise":
            logits = jnp.broadcast_to(info.logits, shape)
            msg["value"] = plan.spec.relax(logits, key, info.family, **plan.options)
        else:  # antithetic Bernoulli: run 0 takes b, run 1 the antithetic b~
            theta = jnp.broadcast_to(info.logits, shape)
            theta = theta.astype(jnp.result_type(theta, float))
            b, b_anti = antithetic_bernoulli(logit_uniform(key, shape, theta.dtype), theta)
            value = jnp.where(self.flip, b_anti, b) > 0
            msg["value"] = value.astype(jnp.result_type(value, int))  # as Bernoulli.sample

    def postprocess_message(self, msg: dict) -> None:
        plan = self.plans.get(msg["name"]) if msg["type"] == "sample" else None
        if plan is not None and plan.spec.kind != "pathwise":
            # as NumPyro's ELBOs do for every site without rsample; pathwise values keep theirs
            msg["value"] = stop_gradient(msg["value"])
            msg["intermediates"] = None


def _importance_trace(
    model: Any, guide: Any, args: tuple, kwargs: dict, params: dict
) -> tuple[dict, dict]:
    """``numpyro.infer.util.get_importance_trace`` without its stop-gradient on every site that
    has no rsample (:class:`_EstimatorValues` stops the values it should): the value of a
    pathwise site carries its surrogate gradient into the model."""
    guide_trace = handlers.trace(handlers.substitute(guide, data=params)).get_trace(*args, **kwargs)
    model = handlers.substitute(handlers.replay(model, guide_trace), data=params)
    model_trace = handlers.trace(model).get_trace(*args, **kwargs)
    for tr in (guide_trace, model_trace):
        for site in tr.values():
            if site["type"] == "sample" and "log_prob" not in site:
                if site["intermediates"]:
                    log_prob = site["fn"].log_prob(site["value"], site["intermediates"])
                else:
                    log_prob = site["fn"].log_prob(site["value"])
                if site["scale"] is not None:
                    log_prob = site["scale"] * log_prob
                site["log_prob"] = log_prob
    return model_trace, guide_trace


class _Run(NamedTuple):
    elbo: jax.Array
    scores: dict[str, tuple[jax.Array, jax.Array]]  # site -> (log q, cost)
    pairs: dict[str, tuple[jax.Array, jax.Array, jax.Array, jax.Array]]  # (theta, b, cost, mask)


def _kl_term(guide_site: dict, model_site: dict) -> jax.Array | None:
    """``-scale * KL(q || p)`` when it is registered in closed form, else ``None``."""
    try:
        kl = kl_divergence(guide_site["fn"], model_site["fn"])
    except NotImplementedError:
        return None
    scale = model_site["scale"]
    return -kl if scale is None else -scale * kl


class TraceDiscrete_ELBO(ELBO):
    r"""ELBO for models and guides with discrete latent sites; the gradient estimator of each
    discrete guide site is chosen at inference time.

    Write the model and the guide with NumPyro's ordinary distributions (``Bernoulli``,
    ``Categorical``, :class:`~numpyro_relax.OneHotCategorical`, ...). Each unobserved guide site
    that is discrete (or has no reparameterised sampler) is differentiated by ``estimator``, or
    by the site's own ``infer={"estimator": name, **options}``; its options default to the ones
    given here. The names (see :data:`numpyro_relax.infer.core.ESTIMATORS` and the "Choosing an
    estimator" page of the docs):

    - pathwise, **biased**, for ``Bernoulli`` and one-hot sites (the model differentiates the
      value): ``"st"`` (straight-through: :math:`\partial b/\partial p = 1` for bits, the
      softmax probabilities for one-hot), ``"st-gumbel"`` (``temperature``), ``"decoupled-st"``
      (``temperature_forward``, ``temperature_backward``), ``"reinmax"``, ``"gst"``,
      ``"gumbel-rao"`` (:mod:`numpyro_relax.infer.pathwise`). An integer ``Categorical`` site with
      one of them is a ``ValueError`` naming the site;
    - score function, **unbiased**, for any discrete site: ``"loo"`` (leave-one-out baselines on
      Rao-Blackwellised costs: each site is weighted by the ELBO terms it influences, found by
      provenance tracking as in ``TraceGraph_ELBO``, per plate element), ``"vargrad"`` (the
      log-variance gradient of Richter et al.: leave-one-out on the whole particle's ELBO, not
      Rao-Blackwellised);
    - antithetic, **unbiased**, for ``Bernoulli`` sites: ``"disarm"`` (Dong, Mnih & Tucker
      2020): each particle is a pair of runs sharing every other random number, the Bernoulli
      sites taking :math:`b = 1[u < \sigma(\theta)]` and :math:`\tilde b = 1[1 - u <
      \sigma(\theta)]`; the gradient of element :math:`i` is
      :math:`\tfrac12(f_s(b) - f_s(\tilde b))(-1)^{\tilde b_i}1[b_i \ne \tilde b_i]\sigma(|\theta_i|)`
      with :math:`f_s` the Rao-Blackwellised cost. The logits of a DisARM site must not depend on
      another DisARM site (``ValueError``).

    Per particle, the objective is :math:`\log p(x, z) - \log q(z)` with these exact pieces:

    - where the guide site and the model site have a KL registered in closed form
      (``analytic_kl=True``, the default; e.g. ``Bernoulli``-``Bernoulli``,
      ``Categorical``-``Categorical``, ``OneHotCategorical``-``OneHotCategorical``, also through
      ``expand``/``to_event``), the pair :math:`\log p(z_s) - \log q(z_s)` is replaced by
      :math:`-\mathrm{KL}(q_s \| p_s)`, as in ``TraceMeanField_ELBO`` (the guide site's law must
      then be conditionally independent of the model site's parents given what it conditions on,
      as in any mean-field guide);
    - otherwise a pathwise site contributes its exact entropy :math:`H(q_s)` (the straight-through
      gradient of :math:`-\log q(b)` would miss the entropy's gradient), and a score or DisARM site
      its :math:`-\log q(z_s)` with the gradient stopped (the estimator supplies it).

    Scales (``handlers.scale``, subsampling) multiply the costs; the score is the gradient of the
    unscaled log-density of the distribution the site was sampled from. Particles are drawn as
    NumPyro's ``Trace_ELBO`` draws them (``random.split(rng_key, num_particles)``, then a model
    and a guide seed each), so the first run of each particle samples what ``Trace_ELBO``'s
    particle samples. The loss value is :math:`-\frac1N\sum_i \mathrm{ELBO}_i` and the estimators
    enter as ``x - stop_gradient(x)``.

    Errors (``ValueError`` naming the site, raised when the loss is traced): an unknown estimator
    or option; an estimator that does not apply to a site; a site with
    ``infer={"enumerate": ...}`` (use ``TraceEnum_ELBO``); a soft
    :class:`~numpyro_relax.GumbelSoftmaxTopK` / :class:`~numpyro_relax.GeneralizedGumbelSoftmax`
    latent site (no density at relaxed values); score sites with fewer than two particles.
    Mutable state (``numpyro.mutable``) is not supported.

    :param estimator: the default estimator name (``"loo"``).
    :param num_particles: particles :math:`N` (pairs of runs for DisARM sites); score-function
        sites need :math:`N \geq 2`.
    :param vectorize_particles: ``True`` (``jax.vmap``), ``False`` (``jax.lax.map``) or a callable
        ``(fn, keys) -> outputs``, as in NumPyro's ELBOs.
    :param analytic_kl: use closed-form KLs where registered.
    :param options: default options of the estimators (e.g. ``temperature=0.5``); each must be an
        option of some estimator, and of one that a site uses.

    **References:**

    1. *Gradient Estimation Using Stochastic Computation Graphs*, J. Schulman, N. Heess,
       T. Weber, P. Abbeel (NeurIPS 2015)
    2. *Buy 4 REINFORCE Samples, Get a Baseline for Free!*, W. Kool, H. van Hoof, M. Welling
       (ICLR 2019 workshop)
    3. *VarGrad: A Low-Variance Gradient Estimator for Variational Inference*, L. Richter et al.
       (NeurIPS 2020)
    4. *DisARM: An Antithetic Gradient Estimator for Binary Latent Variables*, Z. Dong, A. Mnih,
       G. Tucker (NeurIPS 2020)
    5. *Estimating or Propagating Gradients Through Stochastic Neurons for Conditional
       Computation*, Y. Bengio, N. Léonard, A. Courville (2013)
    6. *Categorical Reparameterization with Gumbel-Softmax*, E. Jang, S. Gu, B. Poole (ICLR 2017)
    7. *Improving Discrete Optimisation Via Decoupled Straight-Through Gumbel-Softmax*, R. Shah,
       M. Yan, M. C. Mozer, D. Liu (arXiv:2410.13331)
    """

    can_infer_discrete = True

    def __init__(
        self,
        estimator: str = "loo",
        num_particles: int = 2,
        vectorize_particles: bool | Callable = True,
        analytic_kl: bool = True,
        **options: Any,
    ) -> None:
        name = type(self).__name__
        get_spec(estimator, f"{name}: `estimator`")
        unknown = sorted(set(options) - _all_options())
        if unknown:
            raise ValueError(
                f"{name}: unknown estimator option(s) {unknown}; the options are "
                f"{sorted(_all_options())}."
            )
        n = check_count(name, "num_particles", num_particles, 1)
        self.estimator = estimator
        self.options = dict(options)
        self.analytic_kl = bool(analytic_kl)
        super().__init__(num_particles=n, vectorize_particles=vectorize_particles)

    # ----------------------------------------------------------------------------------------
    def _plans(
        self, param_map: dict, model: Any, guide: Any, args: tuple, kwargs: dict
    ) -> dict[str, _Plan]:
        """The estimator of every latent guide site, found on an abstract trace of the guide."""
        planner = _Planner(type(self).__name__, self.estimator, self.options)
        seeded = handlers.seed(handlers.substitute(guide, data=param_map), random.PRNGKey(0))
        recorder = _EstimatorValues(seeded, planner, False)
        handlers.trace(recorder).get_trace(*args, **kwargs)  # dead code under jit
        plans = recorder.plans
        used = {k for p in plans.values() for k in p.spec.options}
        unused = sorted(set(self.options) - used)
        if unused:
            raise ValueError(
                f"{type(self).__name__}: option(s) {unused} are taken by no estimator that a "
                f"guide site uses (the sites use {sorted({p.spec.name for p in plans.values()})})."
            )
        score = sorted(n for n, p in plans.items() if p.spec.min_particles > self.num_particles)
        if score:
            raise ValueError(
                f"{type(self).__name__}: guide site(s) {score} use a score-function estimator "
                f"whose baseline is built from the other particles: `num_particles` must be >= "
                f"2, got {self.num_particles}."
            )
        return plans

    def _run(
        self,
        rng_key: jax.Array,
        flip: Any,
        param_map: dict,
        model: Any,
        guide: Any,
        args: tuple,
        kwargs: dict,
    ) -> _Run:
        """One run of model and guide: its ELBO, and the per-site terms of the estimators."""
        owner = type(self).__name__
        model_seed, guide_seed = random.split(rng_key)
        planner = _Planner(owner, self.estimator, self.options)
        values = _EstimatorValues(handlers.seed(guide, guide_seed), planner, flip)
        model_trace, guide_trace = _importance_trace(
            handlers.seed(model, model_seed), values, args, kwargs, param_map
        )
        check_model_guide_match(model_trace, guide_trace)
        _validate_model(model_trace, plate_warning="strict")
        for name, site in model_trace.items():
            check_latent_site(owner, "model", name, site)
        for name, site in guide_trace.items():
            check_latent_site(owner, "guide", name, site)
        plans = values.plans

        # the ELBO terms: (value, cond_indep_stack, site name, whose term: model/guide/kl)
        terms: list[tuple[jax.Array, list, str, str]] = []
        replaced = set()
        if self.analytic_kl:
            for name in plans:
                if name in model_trace and model_trace[name]["type"] == "sample":
                    kl = _kl_term(guide_trace[name], model_trace[name])
                    if kl is not None:
                        replaced.add(name)
                        terms.append((kl, model_trace[name]["cond_indep_stack"], name, "kl"))
        for name, site in model_trace.items():
            if site["type"] == "sample" and name not in replaced:
                terms.append((site["log_prob"], site["cond_indep_stack"], name, "model"))
        for name, site in guide_trace.items():
            if site["type"] != "sample" or name in replaced:
                continue
            plan = plans.get(name)
            if plan is None:
                term = -site["log_prob"]
            elif plan.spec.kind == "pathwise":
                h = discrete_entropy(site["fn"])
                term = h if site["scale"] is None else site["scale"] * h
                terms.append((term, site["cond_indep_stack"], name, "kl"))
                continue
            else:
                term = -stop_gradient(site["log_prob"])
            terms.append((term, site["cond_indep_stack"], name, "guide"))
        elbo = sum((jnp.sum(t[0]) for t in terms), jnp.array(0.0))

        estimated = {n: p for n, p in plans.items() if p.spec.kind != "pathwise"}
        scores: dict[str, tuple[jax.Array, jax.Array]] = {}
        pairs: dict[str, tuple[jax.Array, jax.Array, jax.Array, jax.Array]] = {}
        if not estimated:
            return _Run(elbo, scores, pairs)

        needs_deps = any(p.spec.rao_blackwellize for p in estimated.values())
        if needs_deps:
            latents = {
                n: s["value"]
                for n, s in guide_trace.items()
                if s["type"] == "sample" and not s.get("is_observed", False)
            }
            model_deps, guide_deps = get_nonreparam_deps(
                model, guide, args, kwargs, param_map, latents=latents
            )
            downstream: dict[str, MultiFrameTensor] = defaultdict(MultiFrameTensor)
            for value, stack, name, whose in terms:
                if whose == "model":
                    deps = model_deps[name]
                elif whose == "guide":
                    deps = guide_deps[name]
                else:  # a KL or an entropy: no longer a function of the site's own value
                    deps = (model_deps.get(name, frozenset()) | guide_deps[name]) - {name}
                for key in deps:
                    downstream[key].add((stack, value))
            disarm = {n for n, p in estimated.items() if p.spec.kind == "antithetic"}
            for name in sorted(disarm):
                parents = sorted((guide_deps[name] & disarm) - {name})
                if parents:
                    raise ValueError(
                        f"{owner}: the logits of Bernoulli guide site {name!r} depend on the "
                        f"DisARM site(s) {parents}; DisARM's antithetic pairs need Bernoulli "
                        "sites whose logits do not depend on other DisARM sites (use 'loo' for "
                        "one of them)."
                    )

        for name, plan in estimated.items():
            site = guide_trace[name]
            if plan.spec.rao_blackwellize:
                cost = downstream[name].sum_to(site["cond_indep_stack"])
            else:
                cost = elbo
            cost = stop_gradient(cost)
            if plan.spec.kind == "score":
                log_q = site["fn"].log_prob(site["value"])
                shape = jnp.broadcast_shapes(jnp.shape(log_q), jnp.shape(cost))
                scores[name] = (jnp.broadcast_to(log_q, shape), jnp.broadcast_to(cost, shape))
            else:
                info = site_family(site["fn"])
                value = site["value"]
                shape = jnp.shape(value)
                cost = jnp.reshape(cost, jnp.shape(cost) + (1,) * len(site["fn"].event_shape))
                mask = (
                    jnp.ones(shape, bool)
                    if info.mask is None
                    else jnp.broadcast_to(info.mask, shape)
                )
                theta = jnp.broadcast_to(info.logits, shape)
                pairs[name] = (theta, value, jnp.broadcast_to(cost, shape), mask)
        return _Run(elbo, scores, pairs)

    # ----------------------------------------------------------------------------------------
    def loss(
        self,
        rng_key: jax.Array,
        param_map: dict[str, jax.Array],
        model: Any,
        guide: Any,
        *args: Any,
        **kwargs: Any,
    ) -> jax.Array:
        """Surrogate loss whose value is :math:`-\\mathrm{ELBO}` (estimated with the particles)
        and whose gradient is that of the chosen estimators.

        :param jax.random.key rng_key: random number generator seed.
        :param dict param_map: current parameter values keyed by site name.
        :param model: Python callable with NumPyro primitives for the model.
        :param guide: Python callable with NumPyro primitives for the guide.
        :param args: arguments to the model / guide.
        :param kwargs: keyword arguments to the model / guide.
        :return: negative of the ELBO to be minimised.
        """
        plans = self._plans(param_map, model, guide, args, kwargs)
        antithetic = any(p.spec.kind == "antithetic" for p in plans.values())

        def particle(key: jax.Array) -> _Run:
            def run(flip: Any) -> _Run:
                return self._run(key, flip, param_map, model, guide, args, kwargs)

            if antithetic:
                return jax.vmap(run)(jnp.array([False, True]))
            return jax.tree.map(lambda x: x[None], run(False))

        n = self.num_particles
        keys = jnp.expand_dims(rng_key, 0) if n == 1 else random.split(rng_key, n)
        runs = self.vectorize_particles_fn(particle, keys)  # leading axes (particle, run)
        surrogate = jnp.array(0.0)
        for log_q, cost in runs.scores.values():
            mean_cost = jnp.mean(cost, axis=1)
            baseline = mean_cost - loo_advantage(mean_cost)  # the mean over the other particles
            advantage = cost - baseline[:, None]
            surrogate = surrogate + jnp.sum(log_q * stop_gradient(advantage)) / log_q.shape[1]
        for theta, b, cost, mask in runs.pairs.values():
            b = b.astype(theta.dtype)
            weight = jnp.where(mask[:, 0], disarm_weight(theta[:, 0], b[:, 0], b[:, 1]), 0.0)
            g = (cost[:, 0] - cost[:, 1]) * weight
            surrogate = surrogate + jnp.sum(stop_gradient(g) * theta[:, 0])
        surrogate = surrogate / n
        return -(jnp.mean(runs.elbo) + (surrogate - stop_gradient(surrogate)))
