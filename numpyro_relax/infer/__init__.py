"""Inference utilities: ELBOs for guides with discrete (non-reparameterised) sample sites."""

from numpyro_relax.infer.elbo import DisARM_ELBO, TraceLOO_ELBO, VarGrad_ELBO

__all__ = ["DisARM_ELBO", "TraceLOO_ELBO", "VarGrad_ELBO"]
