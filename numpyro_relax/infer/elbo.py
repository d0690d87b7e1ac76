"""ELBOs for guides with discrete sample sites: score-function estimators with multi-particle
baselines (:class:`TraceLOO_ELBO`, :class:`VarGrad_ELBO`) and the antithetic DisARM estimator
for Bernoulli sites (:class:`DisARM_ELBO`).

All three are drop-in ``loss=`` objectives for :class:`numpyro.infer.SVI`, with the interface
of :class:`numpyro.infer.TraceGraph_ELBO` (``num_particles`` / ``num_pairs``,
``vectorize_particles``, ``loss(rng_key, param_map, model, guide, *args, **kwargs)``). Particles
are drawn exactly as NumPyro's ``Trace_ELBO``/``TraceGraph_ELBO`` draw them (``random.split(rng_key,
num_particles)``, then a model and a guide seed per particle), so with the same key the loss
value of the score-function ELBOs is the same number; the first run of DisARM's pair :math:`j`
draws what ``Trace_ELBO(num_particles=num_pairs)`` draws for particle :math:`j`.

The returned loss is a *surrogate*: its value is the usual Monte Carlo estimate of
:math:`-\\mathrm{ELBO}` (the mean over particles of :math:`\\log q(z) - \\log p(x, z)`) and its
gradient is the variance-reduced estimator, thanks to ``x - stop_gradient(x)`` terms whose value
is zero.

- Reparameterised sites (``fn.has_rsample``) and model parameters are differentiated pathwise.
- Non-reparameterised sites get a score-function term whose baseline for particle :math:`i`
  uses only the other particles, so it is independent of particle :math:`i`'s sample and the
  estimator stays unbiased; or, with :class:`DisARM_ELBO`, the DisARM difference of each
  antithetic pair.

Mutable state (``numpyro.mutable``) is not supported, as in ``TraceGraph_ELBO``.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import random
from jax.lax import stop_gradient
from numpyro.distributions import (
    BernoulliLogits,
    BernoulliProbs,
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
)
from numpyro.handlers import seed
from numpyro.infer.elbo import ELBO, MultiFrameTensor, get_nonreparam_deps
from numpyro.infer.util import get_importance_trace
from numpyro.primitives import Messenger
from numpyro.util import check_model_guide_match

from numpyro_relax.estimators import _uniform

try:  # private in NumPyro; only used for the same plate checks TraceGraph_ELBO makes
    from numpyro.util import _validate_model
except ImportError:  # pragma: no cover - depends on the NumPyro version

    def _validate_model(model_trace: dict, plate_warning: str = "loose") -> None:
        return None


__all__ = ["DisARM_ELBO", "TraceLOO_ELBO", "VarGrad_ELBO"]


def _check_num_particles(name: str, num_particles: Any) -> int:
    try:
        n = operator.index(num_particles)
    except TypeError:
        raise ValueError(
            f"{name}: `num_particles` must be an integer, got {num_particles!r}."
        ) from None
    if n < 2:
        raise ValueError(
            f"{name}: `num_particles` must be >= 2 (the baseline of each particle is built "
            f"from the others), got {n}."
        )
    return n


def _is_score_site(site: dict) -> bool:
    return (
        site["type"] == "sample"
        and not site.get("is_observed", False)
        and not site["fn"].has_rsample
    )


class _Terms(NamedTuple):
    """What one run of model and guide gives the ELBOs (see :func:`_trace_terms`)."""

    elbo: jax.Array
    scores: dict[str, jax.Array]
    costs: dict[str, jax.Array]
    guide_trace: dict[str, dict]
    guide_deps: dict[str, frozenset[str]] | None


def _trace_terms(
    rng_key: jax.Array,
    param_map: dict[str, jax.Array],
    model: Any,
    guide: Any,
    args: tuple,
    kwargs: dict,
    rao_blackwellize: bool,
    wrap_guide: Callable[[Any], Any] | None = None,
) -> _Terms:
    """One particle: the ELBO terms of :func:`_particle_terms`, the guide trace and the guide's
    provenance (``guide_deps[site]``: the non-reparameterised sites the log-density of ``site``
    depends on; ``None`` when not computed: without Rao-Blackwellisation or score sites).

    ``wrap_guide`` wraps the *seeded* guide (a handler placed outside ``seed``, so it sees each
    site's ``rng_key`` and its plate-expanded ``fn``); the provenance is computed on the
    unwrapped model and guide at the sampled values.
    """
    model_seed, guide_seed = random.split(rng_key)
    seeded_guide = seed(guide, guide_seed)
    if wrap_guide is not None:
        seeded_guide = wrap_guide(seeded_guide)
    model_trace, guide_trace = get_importance_trace(
        seed(model, model_seed), seeded_guide, args, kwargs, param_map
    )
    check_model_guide_match(model_trace, guide_trace)
    _validate_model(model_trace, plate_warning="strict")

    elbo = jnp.array(0.0)
    for site in model_trace.values():
        if site["type"] == "sample":
            elbo = elbo + jnp.sum(site["log_prob"])
    for site in guide_trace.values():
        if site["type"] == "sample":
            log_q = jnp.sum(site["log_prob"])
            if not site["fn"].has_rsample:
                log_q = stop_gradient(log_q)
            elbo = elbo - log_q

    score_sites = [name for name, site in guide_trace.items() if _is_score_site(site)]
    scores = {
        name: guide_trace[name]["fn"].log_prob(guide_trace[name]["value"]) for name in score_sites
    }
    if not rao_blackwellize or not score_sites:
        costs = {name: stop_gradient(elbo) for name in score_sites}
        return _Terms(elbo, scores, costs, guide_trace, None)

    latents = {
        name: site["value"]
        for name, site in guide_trace.items()
        if site["type"] == "sample" and not site.get("is_observed", False)
    }
    model_deps, guide_deps = get_nonreparam_deps(
        model, guide, args, kwargs, param_map, latents=latents
    )
    downstream: dict[str, MultiFrameTensor] = defaultdict(MultiFrameTensor)
    for name, site in model_trace.items():
        if site["type"] == "sample":
            for key in model_deps[name]:
                downstream[key].add((site["cond_indep_stack"], site["log_prob"]))
    for name, site in guide_trace.items():
        if site["type"] == "sample":
            for key in guide_deps[name]:
                downstream[key].add((site["cond_indep_stack"], -site["log_prob"]))
    costs = {}
    for name in score_sites:
        cost = downstream[name].sum_to(guide_trace[name]["cond_indep_stack"])
        shape = jnp.broadcast_shapes(jnp.shape(scores[name]), jnp.shape(cost))
        scores[name] = jnp.broadcast_to(scores[name], shape)
        costs[name] = stop_gradient(jnp.broadcast_to(cost, shape))
    return _Terms(elbo, scores, costs, guide_trace, guide_deps)


def _particle_terms(
    rng_key: jax.Array,
    param_map: dict[str, jax.Array],
    model: Any,
    guide: Any,
    args: tuple,
    kwargs: dict,
    rao_blackwellize: bool,
) -> tuple[jax.Array, dict[str, jax.Array], dict[str, jax.Array]]:
    """One particle: ``(elbo, {site: log q(z_site)}, {site: cost})``.

    ``elbo`` is ``log p(x, z) - log q(z)`` with gradients only along pathwise routes (the
    non-reparameterised guide log-densities are stopped, as in ``TraceGraph_ELBO``). The
    per-site log q is unscaled (the density the site was sampled from: ``handlers.scale`` and
    subsampling scales belong to the cost, not to the score). The cost of a site is the
    stopped sum of the (scaled) ELBO terms it influences: its downstream terms found by
    provenance tracking when ``rao_blackwellize``, else the whole particle's ELBO.
    """
    terms = _trace_terms(rng_key, param_map, model, guide, args, kwargs, rao_blackwellize)
    return terms.elbo, terms.scores, terms.costs


class _MultiParticleScoreELBO(ELBO):
    can_infer_discrete = True
    _rao_blackwellize = True

    def __init__(self, num_particles: int = 2, vectorize_particles: bool = True) -> None:
        num_particles = _check_num_particles(type(self).__name__, num_particles)
        super().__init__(num_particles=num_particles, vectorize_particles=vectorize_particles)

    def _particles(
        self,
        rng_key: jax.Array,
        param_map: dict[str, jax.Array],
        model: Any,
        guide: Any,
        args: tuple,
        kwargs: dict,
    ) -> tuple[jax.Array, dict[str, jax.Array], dict[str, jax.Array]]:
        def single(key: jax.Array) -> tuple[jax.Array, dict, dict]:
            return _particle_terms(
                key, param_map, model, guide, args, kwargs, self._rao_blackwellize
            )

        rng_keys = random.split(rng_key, self.num_particles)
        return self.vectorize_particles_fn(single, rng_keys)


class TraceLOO_ELBO(_MultiParticleScoreELBO):
    r"""ELBO with Rao-Blackwellised score-function terms and leave-one-out baselines.

    The estimator of ``TraceGraph_ELBO`` (each non-reparameterised site :math:`s` is weighted
    by its *downstream cost* :math:`C_s`, the ELBO terms it can influence, found by provenance
    tracking) with the baseline of Kool et al. (2019): with particles :math:`i = 1..N`,

    .. math::

        \widehat{\nabla \mathrm{ELBO}} = \frac{1}{N}\sum_{i=1}^N \Big[
            \nabla_{\mathrm{path}}\big(\log p(x, z^i) - \log q(z^i)\big)
            + \sum_s \Big(C_s^i - \frac{1}{N-1}\sum_{j \neq i} C_s^j\Big)
              \nabla \log q_s(z_s^i) \Big],

    elementwise over the plates of site :math:`s` (each plate element has its own baseline).
    The baseline of particle :math:`i` does not depend on :math:`z^i`, so the estimator is
    unbiased; it typically has much lower variance than ``TraceGraph_ELBO`` with the same
    number of particles, at the same cost. The loss value is the ELBO estimate
    :math:`-\frac{1}{N}\sum_i(\log p(x, z^i) - \log q(z^i))`.

    Scales (``handlers.scale``, subsampling) multiply the costs; the score is the gradient of the
    unscaled log-density of the distribution the site was sampled from, so a scaled site's
    gradient is unbiased. (NumPyro 0.22's ``TraceGraph_ELBO`` multiplies the score by the scale
    as well, which inflates such gradients by the scale factor; with unit scales the two agree in
    expectation.)

    :param num_particles: number of particles :math:`N \geq 2`.
    :param vectorize_particles: ``True`` (``jax.vmap``), ``False`` (``jax.lax.map``) or a callable
        ``(fn, keys) -> outputs``, as in NumPyro's ELBOs.

    **References:**

    1. *Buy 4 REINFORCE Samples, Get a Baseline for Free!*, Wouter Kool, Herke van Hoof,
       Max Welling (ICLR 2019 DeepRLStructPred workshop)
    2. *Gradient Estimation Using Stochastic Computation Graphs*, John Schulman, Nicolas Heess,
       Theophane Weber, Pieter Abbeel (NeurIPS 2015)
    3. *Variational Inference for Monte Carlo Objectives*, Andriy Mnih, Danilo J. Rezende
       (ICML 2016)
    """

    _rao_blackwellize = True

    def loss(
        self,
        rng_key: jax.Array,
        param_map: dict[str, jax.Array],
        model: Any,
        guide: Any,
        *args: Any,
        **kwargs: Any,
    ) -> jax.Array:
        """Surrogate loss whose value is :math:`-\\mathrm{ELBO}` (estimated with
        ``num_particles`` particles) and whose gradient is the LOO-baseline estimator.

        :param jax.random.key rng_key: random number generator seed.
        :param dict param_map: current parameter values keyed by site name.
        :param model: Python callable with NumPyro primitives for the model.
        :param guide: Python callable with NumPyro primitives for the guide.
        :param args: arguments to the model / guide.
        :param kwargs: keyword arguments to the model / guide.
        :return: negative of the ELBO to be minimised.
        """
        elbos, scores, costs = self._particles(rng_key, param_map, model, guide, args, kwargs)
        n = self.num_particles
        surrogate = jnp.array(0.0)
        for name, log_q in scores.items():
            cost = costs[name]
            advantage = cost - (jnp.sum(cost, axis=0) - cost) / (n - 1)
            term = jnp.sum(log_q * stop_gradient(advantage)) / n
            surrogate = surrogate + (term - stop_gradient(term))
        return -(jnp.mean(elbos) + surrogate)


class VarGrad_ELBO(_MultiParticleScoreELBO):
    r"""ELBO whose non-reparameterised sites are fitted with the log-variance loss (VarGrad).

    With particles :math:`z^i \sim q` and log-ratios :math:`w_i = \log q(z^i) - \log p(x, z^i)`,
    Richter et al. (2020) minimise the log-variance loss

    .. math::

        \mathcal{L}_{\mathrm{LV}} = \frac{1}{2(N-1)} \sum_{i=1}^N \big(w_i - \bar w\big)^2,
        \qquad
        \nabla \mathcal{L}_{\mathrm{LV}} = \frac{1}{N-1}\sum_{i=1}^N (w_i - \bar w)\,
            \nabla \log q_{\mathrm{nr}}(z^i),

    where the samples are held fixed and the gradient flows through
    :math:`\log q_{\mathrm{nr}}`, the log-density of the non-reparameterised guide sites. Its
    expectation is :math:`\nabla \mathrm{KL}(q \,\|\, p(\cdot \mid x))` restricted to those
    sites. Here :math:`\mathcal{L}_{\mathrm{LV}}` supplies the gradient of the
    non-reparameterised sites only: model parameters and reparameterised sites receive the usual
    pathwise gradient of the ELBO, so the estimator is unbiased for
    :math:`-\nabla \mathrm{ELBO}` as a whole. The loss *value* is the ELBO estimate
    (:math:`\mathcal{L}_{\mathrm{LV}}` enters as ``x - stop_gradient(x)``).

    The cost of every non-reparameterised site is the whole particle's log-ratio (no
    Rao-Blackwellisation), so the score term equals the leave-one-out estimator of
    :class:`TraceLOO_ELBO` with the whole ELBO as the cost — the equivalence Richter et al. point
    out; when a model has one discrete site that everything depends on, the two classes give the
    same gradient. Prefer :class:`TraceLOO_ELBO` when there are many conditionally independent
    discrete sites (e.g. local latents in a plate).

    :param num_particles: number of particles :math:`N \geq 2`.
    :param vectorize_particles: ``True`` (``jax.vmap``), ``False`` (``jax.lax.map``) or a callable.

    **References:**

    1. *VarGrad: A Low-Variance Gradient Estimator for Variational Inference*, Lorenz Richter,
       Ayman Boustati, Nikolas Nüsken, Francisco J. R. Ruiz, Ömer Deniz Akyildiz (NeurIPS 2020)
    2. *Solving high-dimensional Hamilton-Jacobi-Bellman PDEs using neural networks:
       perspectives from the theory of controlled diffusions and measures on path space*,
       Nikolas Nüsken, Lorenz Richter (2021)
    """

    _rao_blackwellize = False

    def loss(
        self,
        rng_key: jax.Array,
        param_map: dict[str, jax.Array],
        model: Any,
        guide: Any,
        *args: Any,
        **kwargs: Any,
    ) -> jax.Array:
        """Surrogate loss whose value is :math:`-\\mathrm{ELBO}` and whose gradient combines the
        log-variance gradient (non-reparameterised sites) with the pathwise ELBO gradient.

        :param jax.random.key rng_key: random number generator seed.
        :param dict param_map: current parameter values keyed by site name.
        :param model: Python callable with NumPyro primitives for the model.
        :param guide: Python callable with NumPyro primitives for the guide.
        :param args: arguments to the model / guide.
        :param kwargs: keyword arguments to the model / guide.
        :return: negative of the ELBO to be minimised.
        """
        elbos, scores, _ = self._particles(rng_key, param_map, model, guide, args, kwargs)
        n = self.num_particles
        log_q = jnp.zeros_like(elbos)
        for value in scores.values():
            log_q = log_q + jnp.sum(value.reshape(n, -1), axis=-1)
        w = -stop_gradient(elbos) + (log_q - stop_gradient(log_q))
        log_variance = jnp.sum((w - jnp.mean(w)) ** 2) / (2 * (n - 1))
        return -jnp.mean(elbos) + (log_variance - stop_gradient(log_variance))


# --------------------------------------------------------------------------------------------
# DisARM
# --------------------------------------------------------------------------------------------


def _check_num_pairs(name: str, num_pairs: Any) -> int:
    try:
        n = operator.index(num_pairs)
    except TypeError:
        raise ValueError(f"{name}: `num_pairs` must be an integer, got {num_pairs!r}.") from None
    if n < 1:
        raise ValueError(f"{name}: `num_pairs` must be >= 1, got {n}.")
    return n


def _bernoulli_logits(fn: Any) -> tuple[jax.Array, jax.Array | None] | None:
    """``(logits, mask)`` of a Bernoulli site's distribution, ``None`` if it is not Bernoulli.

    ``fn`` is ``BernoulliLogits``/``BernoulliProbs``, possibly wrapped (any number of times, in
    any order) by ``ExpandedDistribution`` (plates, ``expand``), ``Independent`` (``to_event``)
    and ``MaskedDistribution`` (``mask``). Both arrays are right-aligned with ``fn.shape()``
    (the wrappers only add leading batch dimensions or move batch dimensions to the event), so
    they broadcast against a value of shape ``sample_shape + fn.shape()``; ``mask`` is ``None``
    when nothing is masked.
    """
    mask = None
    while True:
        if isinstance(fn, (BernoulliLogits, BernoulliProbs)):
            return fn.logits, mask
        if isinstance(fn, MaskedDistribution):
            m = fn._mask  # bool or an array that broadcasts to fn.batch_shape
            if m is not True:
                m = jnp.broadcast_to(jnp.asarray(m, bool), fn.batch_shape)
                m = m.reshape(fn.batch_shape + (1,) * len(fn.event_shape))
                mask = m if mask is None else jnp.logical_and(mask, m)
        elif not isinstance(fn, (ExpandedDistribution, Independent)):
            return None
        fn = fn.base_dist


class _AntitheticBernoulli(Messenger):
    r"""Sets each unobserved, non-reparameterised Bernoulli sample site of the guide to one half
    of an antithetic pair: :math:`b = 1[s\,\mathrm{logit}(u) < \theta]` with
    :math:`u \sim U(0, 1)` drawn from the site's own ``rng_key``, :math:`s = 1` (``flip``
    false, :math:`b = 1[u < \sigma(\theta)]`) or :math:`s = -1` (``flip`` true,
    :math:`b = 1[1 - u < \sigma(\theta)]`). Other sites are left alone.

    Must be placed outside :class:`~numpyro.handlers.seed` (it reads the key ``seed`` gave the
    site, and the ``fn`` that plates inside the guide have expanded).
    """

    def __init__(self, fn: Any = None, flip: Any = False) -> None:
        self.flip = flip
        super().__init__(fn)

    def process_message(self, msg: dict) -> None:
        if (
            msg["type"] != "sample"
            or msg.get("is_observed", False)
            or msg["value"] is not None
            or msg["fn"].has_rsample
        ):
            return
        params = _bernoulli_logits(msg["fn"])
        if params is None:  # DisARM_ELBO raises a ValueError on the trace
            return
        shape = tuple(msg["kwargs"].get("sample_shape", ())) + tuple(msg["fn"].shape())
        theta = jnp.asarray(params[0])
        theta = jnp.broadcast_to(theta.astype(jnp.result_type(theta, float)), shape)
        u = _uniform(msg["kwargs"]["rng_key"], shape, theta.dtype)
        logistic = jnp.log(u) - jnp.log1p(-u)
        logistic = jnp.where(self.flip, -logistic, logistic)  # logit(1 - u) = -logit(u)
        value = logistic < stop_gradient(theta)
        msg["value"] = value.astype(jnp.result_type(value, int))  # as Bernoulli.sample


class DisARM_ELBO(ELBO):
    r"""ELBO whose Bernoulli guide sites are fitted with the DisARM antithetic estimator.

    Each of the ``num_pairs`` pairs runs model and guide twice with the same seeds, so every
    site other than the Bernoulli ones (reparameterised noise included) takes the same random
    numbers in both runs, while each Bernoulli guide site with logits :math:`\theta` draws one
    :math:`u \sim U(0, 1)` per element from its own key and takes
    :math:`b = 1[u < \sigma(\theta)]` in the first run and the antithetic
    :math:`\tilde b = 1[1 - u < \sigma(\theta)]` in the second (both exactly
    :math:`\mathrm{Bernoulli}(\sigma(\theta))`; compared in logit space). The first run of pair
    :math:`j` draws what ``Trace_ELBO(num_particles=num_pairs)`` draws for particle :math:`j`
    with the same key. With :math:`f_s` the
    Rao-Blackwellised cost of site :math:`s` (the ELBO terms it can influence, found by
    provenance tracking as in :class:`TraceLOO_ELBO`, per plate element and broadcast over the
    site's event dimensions), the gradient of element :math:`i` of the logits is that of Dong
    et al. (2020),

    .. math::

        \hat g_{s,i} = \tfrac{1}{2}\big(f_s(b) - f_s(\tilde b)\big)\,(-1)^{\tilde b_i}\,
            1[b_i \neq \tilde b_i]\,\sigma(|\theta_i|),

    averaged over pairs, an unbiased estimate of :math:`\partial_{\theta_i}` of the expected
    ELBO (it is ARM with the uniform integrated out given the pair; a bit that agrees in both
    runs contributes nothing). Reparameterised sites and model parameters get the pathwise
    gradient of the ELBO averaged over the :math:`2 \times` ``num_pairs`` runs (the
    non-reparameterised log-densities stopped, whose gradient has mean zero); logits that
    depend on parameters or on reparameterised sites are differentiated through
    :math:`\sum_i \mathrm{stop\_gradient}(\hat g_{s,i})\,\theta_i`. The loss value is the
    ELBO estimate :math:`-\frac{1}{2P}\sum_{r=1}^{2P}(\log p(x, z^r) - \log q(z^r))` over the
    :math:`2P` runs; the DisARM terms enter as ``x - stop_gradient(x)``.

    Requirements, checked when the loss is traced (``ValueError`` naming the site):

    - every non-reparameterised, unobserved guide site is Bernoulli (``BernoulliLogits`` or
      ``BernoulliProbs``, possibly expanded by plates, ``to_event`` or masked); use
      :class:`TraceLOO_ELBO` for other discrete sites;
    - the logits of a Bernoulli site do not depend on the value of another non-reparameterised
      site (directly or through reparameterised sites), as found by the guide's provenance: the
      two runs would then draw the site at different logits, and the joint antithetic coupling is
      not the layer-wise DisARM of the paper, whose estimator for such a site is biased.

    Masked elements (``handlers.mask``) of a guide site get no DisARM gradient, as they get no
    score-function gradient in ``TraceGraph_ELBO``/:class:`TraceLOO_ELBO` (their masked
    log-density is zero). Scales (``handlers.scale``, subsampling) multiply the costs, as in
    :class:`TraceLOO_ELBO`. Mutable state (``numpyro.mutable``) is not supported.

    :param num_pairs: number of antithetic pairs :math:`P \geq 1` (:math:`2P` evaluations of
        model and guide; ``num_particles`` is set to :math:`2P`).
    :param vectorize_particles: how the pairs are mapped: ``True`` (``jax.vmap``), ``False``
        (``jax.lax.map``) or a callable ``(fn, keys) -> outputs``, as in NumPyro's ELBOs. The two
        runs of a pair are always vectorised with ``jax.vmap``.

    **References:**

    1. *DisARM: An Antithetic Gradient Estimator for Binary Latent Variables*, Zhe Dong,
       Andriy Mnih, George Tucker (NeurIPS 2020)
    2. *ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks*, Mingzhang Yin,
       Mingyuan Zhou (ICLR 2019)
    """

    can_infer_discrete = True

    def __init__(self, num_pairs: int = 1, vectorize_particles: bool = True) -> None:
        self.num_pairs = _check_num_pairs(type(self).__name__, num_pairs)
        super().__init__(num_particles=2 * self.num_pairs, vectorize_particles=vectorize_particles)

    def _run(
        self,
        rng_key: jax.Array,
        flip: jax.Array,
        param_map: dict[str, jax.Array],
        model: Any,
        guide: Any,
        args: tuple,
        kwargs: dict,
    ) -> tuple[jax.Array, dict[str, tuple[jax.Array, ...]]]:
        """One run of a pair: ``(elbo, {site: (logits, value, cost, mask)})``, all with the
        value's shape."""
        name_ = type(self).__name__
        terms = _trace_terms(
            rng_key,
            param_map,
            model,
            guide,
            args,
            kwargs,
            rao_blackwellize=True,
            wrap_guide=lambda g: _AntitheticBernoulli(g, flip=flip),
        )
        sites = {}
        for name, cost in terms.costs.items():
            site = terms.guide_trace[name]
            params = _bernoulli_logits(site["fn"])
            if params is None:
                raise ValueError(
                    f"{name_}: guide site {name!r} is not reparameterised and not Bernoulli "
                    f"({type(site['fn']).__name__}); DisARM needs Bernoulli sites "
                    "(use TraceLOO_ELBO for other discrete sites)."
                )
            parents = sorted(terms.guide_deps[name] - {name})
            if parents:
                raise ValueError(
                    f"{name_}: the logits of Bernoulli guide site {name!r} depend on the "
                    f"non-reparameterised site(s) {parents}; DisARM's antithetic pairs need "
                    "Bernoulli sites whose logits do not depend on other discrete values "
                    "(use TraceLOO_ELBO)."
                )
            value = site["value"]
            shape = jnp.shape(value)
            logits, mask = params
            theta = jnp.broadcast_to(logits, shape)
            cost = cost.reshape(jnp.shape(cost) + (1,) * len(site["fn"].event_shape))
            mask = jnp.ones(shape, bool) if mask is None else jnp.broadcast_to(mask, shape)
            sites[name] = (theta, value, jnp.broadcast_to(cost, shape), mask)
        return terms.elbo, sites

    def loss(
        self,
        rng_key: jax.Array,
        param_map: dict[str, jax.Array],
        model: Any,
        guide: Any,
        *args: Any,
        **kwargs: Any,
    ) -> jax.Array:
        """Surrogate loss whose value is :math:`-\\mathrm{ELBO}` (estimated with the
        :math:`2 \\times` ``num_pairs`` runs) and whose gradient is the DisARM estimator.

        :param jax.random.key rng_key: random number generator seed.
        :param dict param_map: current parameter values keyed by site name.
        :param model: Python callable with NumPyro primitives for the model.
        :param guide: Python callable with NumPyro primitives for the guide.
        :param args: arguments to the model / guide.
        :param kwargs: keyword arguments to the model / guide.
        :return: negative of the ELBO to be minimised.
        """

        def pair(key: jax.Array) -> tuple[jax.Array, jax.Array]:
            def run(flip: jax.Array) -> tuple[jax.Array, dict]:
                return self._run(key, flip, param_map, model, guide, args, kwargs)

            elbos, sites = jax.vmap(run)(jnp.array([False, True]))
            surrogate = jnp.array(0.0)
            for theta, b, cost, mask in sites.values():
                b, b_anti = b[0], b[1]
                sign = 1.0 - 2.0 * b_anti  # (-1)^{b~}
                weight = jnp.where(
                    mask[0] & (b != b_anti), sign * jax.nn.sigmoid(jnp.abs(theta[0])), 0.0
                )
                g = 0.5 * (cost[0] - cost[1]) * weight
                surrogate = surrogate + jnp.sum(stop_gradient(g) * theta[0])
            return elbos, surrogate

        # the keys of Trace_ELBO's particles: run 1 of pair j draws what its particle j draws
        if self.num_pairs == 1:
            rng_keys = jnp.expand_dims(rng_key, 0)
        else:
            rng_keys = random.split(rng_key, self.num_pairs)
        elbos, surrogates = self.vectorize_particles_fn(pair, rng_keys)
        surrogate = jnp.mean(surrogates)
        return -(jnp.mean(elbos) + (surrogate - stop_gradient(surrogate)))
