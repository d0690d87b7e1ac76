"""Checks shared by the library's ELBOs: what a latent site must not be."""

from __future__ import annotations

from numpyro.distributions import (
    Distribution,
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
)

from numpyro_relax.distributions.categorical import GeneralizedGumbelSoftmax
from numpyro_relax.distributions.subset import GumbelSoftmaxTopK

__all__ = ["check_latent_site"]


def base_distribution(fn: Distribution) -> Distribution:
    """``fn`` without its ``expand``/``to_event``/``mask`` wrappers."""
    while isinstance(fn, (ExpandedDistribution, Independent, MaskedDistribution)):
        fn = fn.base_dist
    return fn


def check_latent_site(owner: str, program: str, name: str, site: dict) -> None:
    """Raise ``ValueError`` naming the site if a latent sample site of ``program`` (``"model"``
    or ``"guide"``) cannot be handled correctly by a sampling ELBO:

    - ``infer={"enumerate": ...}``: the ELBO samples the site from the guide instead of
      enumerating it (a model site without a guide site would be sampled from the prior);
    - a soft :class:`~numpyro_relax.GumbelSoftmaxTopK` or
      :class:`~numpyro_relax.GeneralizedGumbelSoftmax` (``hard=False``): their relaxed samples
      have no closed-form density, so the ELBO would be NaN from the first step.
    """
    if site["type"] != "sample" or site.get("is_observed", False):
        return
    if (site.get("infer") or {}).get("enumerate") is not None:
        raise ValueError(
            f"{owner}: {program} site {name!r} has infer={{'enumerate': ...}}, which this ELBO "
            "does not do (it samples every latent site from the guide). Use TraceEnum_ELBO to "
            "enumerate the site, or remove the setting (config_enumerate) and give it a guide "
            "site."
        )
    base = base_distribution(site["fn"])
    if isinstance(base, (GumbelSoftmaxTopK, GeneralizedGumbelSoftmax)) and not base.hard:
        raise ValueError(
            f"{owner}: {program} site {name!r} is a soft {type(base).__name__} (hard=False), "
            "whose relaxed samples have no closed-form density: the ELBO would be NaN. Use "
            "hard=True (exact discrete log_prob, straight-through gradient) at latent sites."
        )
