"""Inference utilities: ELBOs for guides with discrete (non-reparameterised) sample sites."""

from numpyro_relax.infer.elbo import TraceLOO_ELBO, VarGrad_ELBO

__all__ = ["TraceLOO_ELBO", "VarGrad_ELBO"]
