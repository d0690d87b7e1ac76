"""numpyro-relax: continuous relaxations of discrete random variables for NumPyro."""

from numpyro_relax import datasets, diagnostics, estimators, infer
from numpyro_relax.distributions import *  # noqa: F403
from numpyro_relax.distributions import __all__ as _distributions_all
from numpyro_relax.infer import DisARM_ELBO, StraightThrough_ELBO, TraceLOO_ELBO, VarGrad_ELBO
from numpyro_relax.laplace_bridge import (
    dirichlet_to_gaussian,
    gaussian_to_dirichlet,
    laplace_bridge,  # the function; the module stays importable as numpyro_relax.laplace_bridge
)

__version__ = "0.1.0"

__all__ = [
    "DisARM_ELBO",
    "StraightThrough_ELBO",
    "TraceLOO_ELBO",
    "VarGrad_ELBO",
    "__version__",
    "datasets",
    "diagnostics",
    "estimators",
    "infer",
    "laplace_bridge",
    "dirichlet_to_gaussian",
    "gaussian_to_dirichlet",
    *_distributions_all,
]
