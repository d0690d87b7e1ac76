"""Diagnostics for SVI fits with (relaxed) discrete latents.

* :func:`svi_to_arviz` turns a fitted guide into ArviZ data (posterior draws from the guide,
  posterior predictive, observed data, pointwise log likelihood) so that ``az.summary``,
  ``az.loo`` and ``az.plot_ppc`` work. It returns an ``InferenceData`` under ArviZ 0.x and a
  ``xarray.DataTree`` under ArviZ 1.x.
* :func:`psis_khat` is the Pareto-smoothed importance sampling check of a guide (Yao et al.,
  2018): the Pareto shape :math:`\\hat k` of the importance ratios :math:`p(x, z) / q(z)`.
  The Pareto fit is NumPyro's (the one ``numpyro.infer.psis_diagnostic`` uses, NumPyro >=
  0.22); with an older NumPyro it is ArviZ's.
* :func:`vertex_distance` and :func:`elbo_grad_variance` help to pick a temperature or an
  estimator: how discrete the relaxed samples are, and how noisy the ELBO gradient is.

ArviZ is an optional dependency (``pip install 'numpyro-relax[examples]'``); it is imported
only inside the functions that need it (:func:`svi_to_arviz` always; the k-hat functions only
with NumPyro < 0.22).

**References:**

1. Yao, Vehtari, Simpson, Gelman (2018), *Yes, but Did It Work?: Evaluating Variational
   Inference*, ICML.
2. Vehtari, Simpson, Gelman, Yao, Gabry (2024), *Pareto Smoothed Importance Sampling*, JMLR.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from numpyro import handlers
from numpyro.distributions import biject_to, constraints
from numpyro.infer import Predictive
from numpyro.infer.util import log_density
from numpyro.primitives import Messenger

from numpyro_relax import _diagnostics_backends as _backends
from numpyro_relax._tracing import guide_and_replayed_model

__all__ = [
    "GradVariance",
    "PSISResult",
    "VertexDistance",
    "elbo_grad_variance",
    "pareto_khat",
    "psis_khat",
    "svi_to_arviz",
    "vertex_distance",
]


# --------------------------------------------------------------------------------------------
# Pareto k-hat of log weights
# --------------------------------------------------------------------------------------------


def pareto_khat(log_weights: ArrayLike) -> np.ndarray:
    """Pareto :math:`\\hat k` of raw log importance weights, one fit per row.

    For weights you already have (e.g. a VAE's :math:`\\log p(x, z_s) - \\log q(z_s \\mid x)`
    for every test image); :func:`psis_khat` draws them from a model and guide. Uses NumPyro's
    PSIS fit (the one of ``numpyro.infer.psis_diagnostic``, NumPyro >= 0.22), or with an older
    NumPyro ArviZ's (``az.psislw`` in ArviZ 0.x, ``arviz_stats`` in 1.x); a row whose tail
    cannot be fitted (fewer than about 25 draws, or the largest weights all equal) gets ``inf``.

    :param log_weights: array of shape ``(..., num_draws)``; draws on the last axis.
    :return: ``numpy`` array of shape ``(...)``.
    :raises ImportError: if NumPyro < 0.22 and ArviZ is not installed.
    :raises ValueError: if ``log_weights`` is a scalar or has non-finite entries.
    """
    lw = np.asarray(log_weights, dtype=np.float64)
    if lw.ndim == 0:
        raise ValueError("pareto_khat: `log_weights` needs a last axis of draws, got a scalar.")
    if not np.all(np.isfinite(lw)):
        raise ValueError(
            f"pareto_khat: {int(np.sum(~np.isfinite(lw)))} of {lw.size} `log_weights` are not "
            "finite."
        )
    rows = lw.reshape(-1, lw.shape[-1])
    khats = np.array([_backends._khat(row) for row in rows])
    return khats.reshape(lw.shape[:-1])


# --------------------------------------------------------------------------------------------
# Model / guide tracing helpers
# --------------------------------------------------------------------------------------------


class _Uncondition(Messenger):
    """Turn observed sample sites into latent ones, so that they are sampled (like Pyro's
    ``poutine.uncondition``). NumPyro's ``Predictive`` returns the observations themselves at
    observed sites; this handler makes it draw replicated data instead."""

    def process_message(self, msg: dict) -> None:
        if msg["type"] == "sample" and msg["is_observed"]:
            msg["is_observed"] = False
            msg["value"] = None


def _refuse_subsampling(*traces: Mapping[str, dict]) -> None:
    """Raise if a plate of the model or guide subsamples (``subsample_size < size``)."""
    for tr in traces:
        for name, site in tr.items():
            if site["type"] != "plate":
                continue
            size = site["args"][0]
            drawn = int(jnp.shape(site["value"])[0])
            if drawn != size:
                raise ValueError(
                    f"svi_to_arviz: plate {name!r} subsamples {drawn} of its {size} elements "
                    "(subsample_size). ArviZ's groups need the likelihood of every observation at "
                    "every draw, so run the model on the full data set: build the plate without "
                    "subsample_size for the diagnostics (e.g. make it an argument of the model "
                    "and pass None)."
                )


def _trace_fit(
    model: Callable, guide: Callable, params: dict, key: jax.Array, args: tuple, kwargs: dict
) -> tuple[dict, dict]:
    """:func:`guide_and_replayed_model`, with a hint for flax modules whose state is missing."""
    try:
        return guide_and_replayed_model(model, guide, params, key, args, kwargs)
    except AssertionError as err:
        # numpyro.contrib.module.flax_module(..., mutable=[...]) asserts that its parameters
        # and its state are both given or both missing; SVI keeps the state apart.
        stateless = [
            n[: -len("$params")]
            for n in params
            if n.endswith("$params") and n[: -len("$params")] + "$state" not in params
        ]
        if not stateless:
            raise
        raise ValueError(
            f"svi_to_arviz: `params` has parameters but no state for the module(s) {stateless}. "
            "A flax module with mutable state (BatchNorm) keeps it outside the parameters; pass "
            "params={**svi_result.params, **svi_result.state.mutable_state}."
        ) from err


def _pointwise_log_likelihood(
    model: Callable,
    params: dict,
    draws: dict,
    keys: jax.Array,
    args: tuple,
    kwargs: dict,
) -> dict:
    """``log p(y_i | z_s)`` at every observed site for every draw ``z_s``.

    As ``numpyro.infer.util.log_likelihood`` (one draw at a time, with ``lax.map``), but the
    model is seeded with its own key per draw: a model that calls ``numpyro.prng_key()``
    (flax dropout, e.g. NumPyro's ProdLDA) needs one. ``keys`` sets the number of draws, so a
    model without latent sites (``draws`` empty) gets one row per key too.
    """

    def one(key_and_draw: tuple) -> dict:
        k, draw = key_and_draw
        seeded = handlers.seed(handlers.substitute(model, data={**params, **draw}), k)
        tr = handlers.trace(seeded).get_trace(*args, **kwargs)
        return {
            n: site["fn"].log_prob(site["value"])
            for n, site in tr.items()
            if site["type"] == "sample" and site["is_observed"]
        }

    return jax.lax.map(one, (keys, draws))


def svi_to_arviz(
    model: Callable,
    guide: Callable,
    params: Mapping[str, Any],
    *args: Any,
    key: jax.Array,
    num_samples: int = 1000,
    num_chains: int = 1,
    coords: Mapping[str, Any] | None = None,
    dims: Mapping[str, list[str]] | None = None,
    posterior_predictive: bool = True,
    **kwargs: Any,
) -> Any:
    """Convert an SVI fit into ArviZ data.

    Groups:

    * ``posterior``: ``num_samples`` draws of the model's latent sample sites from the guide
      (``Predictive(guide, params=params)``), plus the model's ``numpyro.deterministic`` sites
      computed from them;
    * ``posterior_predictive``: one replicated data set per draw at every observed site, drawn
      from the model's likelihood at that draw (the observations are not copied: observed
      sites are sampled as if unobserved);
    * ``log_likelihood``: pointwise :math:`\\log p(y_i \\mid z)` per draw
      (``numpyro.infer.util.log_likelihood``), for ``az.loo``/``az.waic``;
    * ``observed_data``: the values at the observed sites.

    Guide draws are independent, so ``num_chains > 1`` just splits them into equal "chains"
    (R-hat then should be 1 up to noise; it is not a convergence check of SVI).

    Every run of the model and guide is seeded from ``key`` (each draw with its own key), so
    models that call ``numpyro.prng_key()``, e.g. flax dropout through
    ``flax_module(..., apply_rng=["dropout"])``, work; pass the model's own switch (e.g. an
    ``is_training=False`` keyword) to turn dropout off. Subsampled plates (``subsample_size``)
    are refused: ArviZ needs the whole data set at every draw.

    *Mutable state* (flax ``BatchNorm`` through ``flax_module(..., mutable=["batch_stats"])``):
    SVI keeps the running statistics in ``svi_result.state.mutable_state``, not in
    ``svi_result.params``; pass both, ``params={**svi_result.params,
    **svi_result.state.mutable_state}``, and run the model in evaluation mode (e.g.
    ``use_running_average=True`` through a model argument). Updates the model makes to that
    state here are discarded.

    :param model: the NumPyro model.
    :param guide: the guide it was fitted with.
    :param params: fitted parameters, e.g. ``svi.get_params(state)`` or ``svi_result.params``
        (constrained values, as SVI returns them).
    :param args: positional arguments of the model and guide (the data).
    :param key: a JAX PRNG key.
    :param num_samples: total number of draws; must be divisible by ``num_chains``.
    :param num_chains: number of chains to split the draws into.
    :param coords: ArviZ coordinates, passed to ``from_dict``.
    :param dims: ArviZ dimension names per variable, passed to ``from_dict``.
    :param posterior_predictive: draw the ``posterior_predictive`` group. ``False`` skips it,
        for likelihoods that cannot be sampled under ``vmap`` (e.g. a ``Multinomial`` whose
        ``total_count`` varies, as in NumPyro's ProdLDA, needs ``total_count_max``); the other
        groups are unchanged.
    :param kwargs: keyword arguments of the model and guide.
    :return: ``arviz.InferenceData`` (ArviZ 0.x) or ``xarray.DataTree`` (ArviZ 1.x).
    :raises ImportError: if ArviZ is not installed.
    :raises ValueError: if a plate of the model or guide subsamples, or ``params`` lacks the
        state of a flax module with mutable state.
    """
    _backends._arviz_major()  # fail early, before any sampling, when ArviZ is missing
    if num_samples < 1 or num_chains < 1 or num_samples % num_chains:
        raise ValueError(
            f"num_samples ({num_samples}) must be a positive multiple of num_chains ({num_chains})"
        )
    params = dict(params)
    k_trace, k_guide, k_pred, k_loglik = jax.random.split(key, 4)
    guide_tr, model_tr = _trace_fit(model, guide, params, k_trace, args, kwargs)
    _refuse_subsampling(guide_tr, model_tr)
    latent = [n for n, s in model_tr.items() if s["type"] == "sample" and not s["is_observed"]]
    deterministic = [n for n, s in model_tr.items() if s["type"] == "deterministic"]
    observed = [n for n, s in model_tr.items() if s["type"] == "sample" and s["is_observed"]]

    guide_draws = Predictive(guide, params=params, num_samples=num_samples)(
        k_guide, *args, **kwargs
    )
    guide_draws = {n: v for n, v in guide_draws.items() if n in latent}
    replicated = observed if posterior_predictive else []
    predictive = Predictive(
        _Uncondition(model) if posterior_predictive else model,
        posterior_samples=guide_draws,
        params=params,
        num_samples=num_samples,  # needed when the model has no latent sites
        return_sites=latent + deterministic + replicated,
    )(k_pred, *args, **kwargs)
    # Latent values as the model sees them (sites the guide does not cover come from the prior).
    latent_draws = {n: predictive[n] for n in latent}
    keys = jax.random.split(k_loglik, num_samples)
    loglik = _pointwise_log_likelihood(model, params, latent_draws, keys, args, kwargs)

    def chains(x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x.reshape(num_chains, num_samples // num_chains, *x.shape[1:])

    groups = {
        "posterior": {n: chains(predictive[n]) for n in latent + deterministic},
        "posterior_predictive": {n: chains(predictive[n]) for n in replicated},
        "log_likelihood": {n: chains(loglik[n]) for n in observed},
        "observed_data": {n: np.asarray(model_tr[n]["value"]) for n in observed},
    }
    groups = {g: v for g, v in groups.items() if v}
    return _backends._from_dict(groups, coords=coords, dims=dims)


# --------------------------------------------------------------------------------------------
# PSIS k-hat
# --------------------------------------------------------------------------------------------


class PSISResult(NamedTuple):
    """Result of :func:`psis_khat`.

    :ivar khat: the Pareto shape estimate :math:`\\hat k` (a float). Below 0.5 the guide is
        good for importance sampling; up to 0.7 usable; above 0.7 the importance ratios are so
        heavy-tailed that the guide misses mass of the posterior (typically: too narrow).
    :ivar log_weights: the raw log importance weights
        :math:`\\log p(x, z_s) - \\log q(z_s)`, shape ``(num_samples,)``, float64.
    """

    khat: float
    log_weights: np.ndarray


def _split_arrays(tree: Any) -> tuple[list, Callable[[list], Any]]:
    """Split the array leaves off a pytree (the model's args/kwargs) so that ``jit`` takes them
    as arguments instead of baking them into the program as constants; other leaves (Python
    flags, callables) stay static."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    is_array = [isinstance(leaf, jax.Array | np.ndarray) for leaf in leaves]
    arrays = [leaf for leaf, a in zip(leaves, is_array, strict=True) if a]

    def rebuild(new_arrays: list) -> Any:
        it = iter(new_arrays)
        return treedef.unflatten(
            [next(it) if a else leaf for leaf, a in zip(leaves, is_array, strict=True)]
        )

    return arrays, rebuild


def _log_weights(
    model: Callable,
    guide: Callable,
    params: Mapping,
    args: tuple,
    kwargs: dict,
    keys: jax.Array,
) -> jax.Array:
    data, rebuild = _split_arrays((args, kwargs))

    def one(key: jax.Array, params: Mapping, data: list) -> jax.Array:
        # As one particle of Trace_ELBO: z ~ q, then the model replayed on z.
        args, kwargs = rebuild(data)
        # NumPyro's psis_diagnostic order, so that the same key gives the same draws.
        k_model, k_guide = jax.random.split(key)
        guide_lp, guide_tr = log_density(handlers.seed(guide, k_guide), args, kwargs, params)
        model_lp, _ = log_density(
            handlers.replay(handlers.seed(model, k_model), trace=guide_tr), args, kwargs, params
        )
        return model_lp - guide_lp

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))(keys, params, data)


def psis_khat(
    model: Callable,
    guide: Callable,
    params: Mapping[str, Any],
    *args: Any,
    key: jax.Array,
    num_samples: int = 2000,
    **kwargs: Any,
) -> PSISResult:
    """Pareto :math:`\\hat k` of the importance ratios of a guide (PSIS diagnostic).

    Draws :math:`z_s \\sim q` and computes :math:`\\log w_s = \\log p(x, z_s) - \\log q(z_s)`
    (the single-particle ELBO terms, vectorised with ``vmap`` and compiled once), then fits a
    generalised Pareto distribution to the largest weights. The draws and the fit are those of
    ``numpyro.infer.psis_diagnostic(key, params, model, guide, *args, num_particles=num_samples)``
    (NumPyro >= 0.22), which returns :math:`\\hat k` only; this function also returns the
    weights (for importance-sampling estimates) and works with older NumPyro through ArviZ's
    PSIS. Large :math:`\\hat k` means the guide is missing posterior mass. Relaxed latents are
    fine, but then ``p`` is the relaxed model's density.

    :math:`\\hat k` is ``inf`` when no Pareto tail can be fitted: fewer than about 25 draws,
    or the largest weights all equal (e.g. a discrete guide that draws its mode many times,
    or a guide equal to the posterior, whose weights can differ only by rounding).

    :param model: the NumPyro model.
    :param guide: the guide.
    :param params: fitted (constrained) parameters.
    :param args: positional arguments of the model and guide.
    :param key: a JAX PRNG key.
    :param num_samples: number of draws from the guide (a few thousand gives a stable fit).
    :param kwargs: keyword arguments of the model and guide.
    :return: :class:`PSISResult` ``(khat, log_weights)``.
    :raises ImportError: if NumPyro < 0.22 and ArviZ is not installed.
    :raises ValueError: if some log weights are not finite.
    """
    if _backends._numpyro_psis_khat() is None:
        _backends._arviz_major()  # fail before sampling when the fallback fit is missing
    keys = jax.random.split(key, num_samples)
    lw = np.asarray(_log_weights(model, guide, dict(params), args, kwargs, keys), np.float64)
    if not np.all(np.isfinite(lw)):
        raise ValueError(
            f"{int(np.sum(~np.isfinite(lw)))} of {lw.size} log importance weights are not "
            "finite (the guide puts mass where the model has none, or a density overflowed)"
        )
    return PSISResult(khat=_backends._khat(lw), log_weights=lw)


# --------------------------------------------------------------------------------------------
# Relaxation diagnostics
# --------------------------------------------------------------------------------------------


class VertexDistance(NamedTuple):
    """Result of :func:`vertex_distance` (all ``jax.Array``).

    :ivar distances: per-sample distance to the nearest vertex, the input's shape without the
        event axis.
    :ivar mean: mean distance.
    :ivar max: largest distance.
    :ivar fraction_near_vertex: share of samples with distance ``<= eps``.
    """

    distances: jax.Array
    mean: jax.Array
    max: jax.Array
    fraction_near_vertex: jax.Array


def vertex_distance(
    samples: jax.Array,
    *,
    support: Literal["simplex", "unit_interval"] = "simplex",
    k: int = 1,
    eps: float = 1e-2,
) -> VertexDistance:
    """How close relaxed samples are to the discrete values they relax.

    * ``support="simplex"`` (last axis is the event, ``K`` categories): the distance of
      :math:`x` to the nearest vertex is :math:`1 - \\max_k x_k`, which on the simplex is both
      the :math:`L_\\infty` distance and half the :math:`L_1` distance to the nearest one-hot
      vector. For relaxed ``k``-subsets (``k``-hot, entries summing to ``k``) it is
      :math:`1 - \\frac1k \\sum_{\\text{top } k} x_i`, the mean shortfall of the ``k`` largest
      entries from 1.
    * ``support="unit_interval"`` (every element is a relaxed Bernoulli in [0, 1]):
      :math:`\\min(x, 1 - x)`, the same formula for the two-category simplex ``(x, 1 - x)``.

    A distance 0 means exactly discrete; 0.5 (binary) or :math:`1 - 1/K` (uniform) is the
    farthest. Samples in log space (``ExpRelaxedOneHotCategorical``) must be exponentiated
    first. Jit-able.

    :param samples: relaxed samples.
    :param support: ``"simplex"`` or ``"unit_interval"``.
    :param k: subset size for relaxed ``k``-hot samples (``support="simplex"`` only).
    :param eps: the threshold for :attr:`VertexDistance.fraction_near_vertex`.
    :return: :class:`VertexDistance`.
    """
    x = jnp.asarray(samples)
    if support == "simplex":
        if x.ndim < 1 or not 1 <= k <= x.shape[-1]:
            raise ValueError(f"k must lie in [1, K] for samples of shape {x.shape}, got k={k}")
        top = jax.lax.top_k(x, k)[0]
        d = 1.0 - jnp.mean(top, axis=-1)
    elif support == "unit_interval":
        d = jnp.minimum(x, 1.0 - x)
    else:
        raise ValueError(f"support must be 'simplex' or 'unit_interval', got {support!r}")
    return VertexDistance(
        distances=d,
        mean=jnp.mean(d),
        max=jnp.max(d),
        fraction_near_vertex=jnp.mean(d <= eps),
    )


class GradVariance(NamedTuple):
    """Result of :func:`elbo_grad_variance`.

    :ivar mean: per-parameter mean gradient over keys (same pytree as the parameters).
    :ivar variance: per-parameter, per-element variance of the gradient over keys (unbiased).
    :ivar total: the trace of the gradient covariance, i.e. the sum of all variances (scalar).
    :ivar grads: the gradient of every key, each leaf with a leading ``num_keys`` axis.
    """

    mean: dict
    variance: dict
    total: jax.Array
    grads: dict


def _param_transforms(
    model: Callable, guide: Callable, params: Mapping, key: jax.Array, args: tuple, kwargs: dict
) -> dict:
    """``biject_to(constraint)`` of every ``numpyro.param`` site of the guide and model."""
    guide_tr, model_tr = guide_and_replayed_model(model, guide, params, key, args, kwargs)
    transforms = {}
    for tr in (guide_tr, model_tr):
        for name, site in tr.items():
            if site["type"] == "param" and name not in transforms:
                transforms[name] = biject_to(site["kwargs"].get("constraint", constraints.real))
    return transforms


def elbo_grad_variance(
    elbo: Any,
    model: Callable,
    guide: Callable,
    params: Mapping[str, Any],
    *args: Any,
    key: jax.Array,
    num_keys: int = 100,
    unconstrained: bool = True,
    **kwargs: Any,
) -> GradVariance:
    """Variance of the ELBO gradient over random keys, to compare temperatures and estimators.

    The gradient of ``elbo.loss(key, params, model, guide, *args, **kwargs)`` is taken for
    ``num_keys`` keys at once (``vmap``). By default it is taken, as SVI does, with respect to
    the *unconstrained* parameters (``biject_to(constraint)`` of each ``numpyro.param`` site),
    so the variances are those the optimiser sees. Any ELBO with NumPyro's ``loss`` signature
    works (``Trace_ELBO``, ``TraceGraph_ELBO``, ``TraceMeanField_ELBO``, this package's
    estimators); its ``num_particles`` is part of the estimator being measured.

    :param elbo: an ELBO instance.
    :param model: the NumPyro model.
    :param guide: the guide.
    :param params: (constrained) parameters, e.g. ``svi.get_params(state)``.
    :param args: positional arguments of the model and guide.
    :param key: a JAX PRNG key.
    :param num_keys: number of independent gradient draws (at least 2).
    :param unconstrained: differentiate with respect to the unconstrained parameters (as SVI
        does); ``False`` differentiates with respect to ``params`` as given.
    :param kwargs: keyword arguments of the model and guide.
    :return: :class:`GradVariance` with per-parameter means and variances and their total.
    """
    if num_keys < 2:
        raise ValueError(f"num_keys must be at least 2, got {num_keys}")
    params = dict(params)
    k_trace, k_grad = jax.random.split(key)
    if unconstrained:
        transforms = _param_transforms(model, guide, params, k_trace, args, kwargs)
    else:
        transforms = {}

    def to_constrained(u: dict) -> dict:
        return {n: transforms[n](v) if n in transforms else v for n, v in u.items()}

    u0 = {n: transforms[n].inv(v) if n in transforms else v for n, v in params.items()}

    data, rebuild = _split_arrays((args, kwargs))

    def loss(u: dict, k: jax.Array, data: list) -> jax.Array:
        args, kwargs = rebuild(data)
        return elbo.loss(k, to_constrained(u), model, guide, *args, **kwargs)

    keys = jax.random.split(k_grad, num_keys)
    grads = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, None)))(u0, keys, data)

    def variance(g: jax.Array) -> jax.Array:
        # Shift by the first draw: exact zeros when every draw is the same, and no
        # cancellation when the mean is large compared with the spread.
        return jnp.var(g - g[:1], axis=0, ddof=1)

    var = jax.tree_util.tree_map(variance, grads)
    mean = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), grads)
    total = sum(jnp.sum(v) for v in jax.tree_util.tree_leaves(var))
    return GradVariance(mean=mean, variance=var, total=jnp.asarray(total), grads=grads)
