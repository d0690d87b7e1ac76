"""Inference for discrete latent sites: one ELBO whose gradient estimator is chosen per site
(:class:`TraceDiscrete_ELBO`), its presets, and the straight-through mean-field ELBO."""

from numpyro_relax.infer.autoguide import AutoDiscrete
from numpyro_relax.infer.discrete_elbo import TraceDiscrete_ELBO
from numpyro_relax.infer.elbo import DisARM_ELBO, TraceLOO_ELBO, VarGrad_ELBO
from numpyro_relax.infer.reparam import GumbelSoftmaxReparam, RelaxReparam
from numpyro_relax.infer.straight_through import StraightThrough_ELBO

__all__ = [
    "AutoDiscrete",
    "DisARM_ELBO",
    "GumbelSoftmaxReparam",
    "RelaxReparam",
    "StraightThrough_ELBO",
    "TraceDiscrete_ELBO",
    "TraceLOO_ELBO",
    "VarGrad_ELBO",
]
