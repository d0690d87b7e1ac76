"""Inference utilities: ELBOs for guides with discrete sample sites (score-function estimators)
and for straight-through guides of discrete model sites."""

from numpyro_relax.infer.elbo import DisARM_ELBO, TraceLOO_ELBO, VarGrad_ELBO
from numpyro_relax.infer.straight_through import StraightThrough_ELBO

__all__ = ["DisARM_ELBO", "StraightThrough_ELBO", "TraceLOO_ELBO", "VarGrad_ELBO"]
