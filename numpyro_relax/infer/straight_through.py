"""A mean-field ELBO for straight-through guides of discrete model sites."""

from __future__ import annotations

from typing import Any

import jax
from numpyro.distributions.kl import kl_divergence
from numpyro.infer import TraceMeanField_ELBO

from numpyro_relax._tracing import guide_and_replayed_model
from numpyro_relax.infer.util import check_latent_site

__all__ = ["StraightThrough_ELBO"]


def _discrete_latents(model_trace: dict) -> list[str]:
    return [
        name
        for name, site in model_trace.items()
        if site["type"] == "sample"
        and not site.get("is_observed", False)
        and site["fn"].support.is_discrete
    ]


def _check_straight_through_guide(
    model: Any, guide: Any, param_map: dict, args: tuple, kwargs: dict, rng_key: jax.Array
) -> None:
    """Raise ``ValueError`` unless every discrete latent site of ``model`` is sampled in
    ``guide`` from a distribution with pathwise (e.g. straight-through) samples and a KL to
    the site's prior registered in closed form.

    Runs at trace time; under ``jit`` the extra trace is dead code and costs nothing at run time.
    """
    guide_trace, model_trace = guide_and_replayed_model(
        model, guide, param_map, rng_key, args, kwargs
    )
    for program, tr in (("model", model_trace), ("guide", guide_trace)):
        for name, site in tr.items():
            check_latent_site("StraightThrough_ELBO", program, name, site)
    for name in _discrete_latents(model_trace):
        site = guide_trace.get(name)
        if site is None or site["type"] != "sample":
            raise ValueError(
                f"StraightThrough_ELBO: the model's discrete site {name!r} has no guide site; "
                "sample it in the guide from a straight-through distribution."
            )
        if not site["fn"].has_rsample:
            raise ValueError(
                f"StraightThrough_ELBO: guide site {name!r} ({type(site['fn']).__name__}) has "
                "no pathwise samples, and this ELBO would not differentiate through it. Use a "
                "straight-through distribution (e.g. RelaxedOneHotCategoricalStraightThrough, "
                "StraightThroughBernoulli) or a score-function ELBO (TraceLOO_ELBO, DisARM_ELBO)."
            )
        try:
            kl_divergence(site["fn"], model_trace[name]["fn"])
        except NotImplementedError:
            raise ValueError(
                f"StraightThrough_ELBO: no KL is registered for guide site {name!r} "
                f"({type(site['fn']).__name__}) against its prior "
                f"({type(model_trace[name]['fn']).__name__}). TraceMeanField_ELBO would fall "
                "back to log q - log p at the discrete sample, whose gradient misses the "
                "entropy term; register the KL with numpyro.distributions.kl.kl_divergence."
            ) from None


class StraightThrough_ELBO(TraceMeanField_ELBO):
    r""":class:`~numpyro.infer.TraceMeanField_ELBO` for models whose latent sites are discrete
    and whose guide samples them with straight-through distributions.

    A straight-through guide site (:class:`~numpyro_relax.RelaxedOneHotCategoricalStraightThrough`,
    :class:`~numpyro_relax.DecoupledStraightThroughGumbelSoftmax`,
    :class:`~numpyro_relax.StraightThroughBernoulli`,
    :class:`~numpyro_relax.RelaxedBernoulliStraightThrough`) draws an exactly discrete value
    whose gradient is a relaxed one, and the KL of each such site to the model's
    :class:`~numpyro_relax.OneHotCategorical` / ``Bernoulli`` prior is registered in closed
    form, so the objective

    .. math::

        \mathbb{E}_{q}\big[\log p(x \mid z)\big] - \sum_s \mathrm{KL}\big(q_s \,\|\, p_s\big)

    is the ELBO of the *discrete* model, with the biased straight-through gradient for its
    expected log-likelihood and the exact gradient of the KL terms. It is
    ``TraceMeanField_ELBO`` unchanged, except that it tells :class:`~numpyro.infer.SVI` it can
    handle the discrete model sites (``can_infer_discrete``, which silences SVI's warning about
    discrete latents) and checks, when the loss is traced, that every discrete latent site of
    the model is sampled in the guide from a distribution with pathwise samples and a KL to its
    prior registered in closed form. A plain ``Categorical``/``Bernoulli`` guide site raises a
    ``ValueError`` (use :class:`~numpyro_relax.infer.TraceLOO_ELBO` or
    :class:`~numpyro_relax.infer.DisARM_ELBO`), and so does a pair without a registered KL:
    ``TraceMeanField_ELBO`` would silently fall back to :math:`\log q - \log p` at the
    discrete sample, whose straight-through gradient misses the entropy term (the score of
    :math:`\log q` has mean zero). Relaxed guide sites whose KL to the discrete prior is
    registered (Jang et al.'s objective) pass the check as well.

    :param num_particles: number of particles, as in ``TraceMeanField_ELBO``.
    :param vectorize_particles: as in ``TraceMeanField_ELBO``.

    **References:**

    1. *Estimating or Propagating Gradients Through Stochastic Neurons for Conditional
       Computation*, Yoshua Bengio, Nicholas Léonard, Aaron Courville (2013)
    2. *Categorical Reparameterization with Gumbel-Softmax*, Eric Jang, Shixiang Gu, Ben Poole
       (ICLR 2017)
    """

    can_infer_discrete = True

    def loss_with_mutable_state(
        self,
        rng_key: jax.Array,
        param_map: dict,
        model: Any,
        guide: Any,
        *args: Any,
        **kwargs: Any,
    ) -> dict:
        _check_straight_through_guide(model, guide, param_map, args, kwargs, rng_key)
        return super().loss_with_mutable_state(rng_key, param_map, model, guide, *args, **kwargs)
