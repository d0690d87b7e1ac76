"""numpyro-relax: continuous relaxations of discrete random variables for NumPyro."""

from numpyro_relax import datasets, diagnostics
from numpyro_relax.distributions import *  # noqa: F403
from numpyro_relax.distributions import __all__ as _distributions_all

__version__ = "0.1.0"

__all__ = ["__version__", "datasets", "diagnostics", *_distributions_all]
