"""numpyro-relax: continuous relaxations of discrete random variables for NumPyro."""

from numpyro_relax import datasets, diagnostics, estimators, infer
from numpyro_relax.distributions import *  # noqa: F403
from numpyro_relax.distributions import __all__ as _distributions_all
from numpyro_relax.infer import TraceLOO_ELBO, VarGrad_ELBO

__version__ = "0.1.0"

__all__ = [
    "TraceLOO_ELBO",
    "VarGrad_ELBO",
    "__version__",
    "datasets",
    "diagnostics",
    "estimators",
    "infer",
    *_distributions_all,
]
