"""Relaxed discrete distributions for NumPyro."""

from numpyro_relax.distributions import kl  # noqa: F401  (registers the exact KLs)
from numpyro_relax.distributions.categorical import (
    DecoupledStraightThroughGumbelSoftmax,
    ExpRelaxedOneHotCategorical,
    GeneralizedGumbelSoftmax,
    OneHotCategorical,
    RelaxedOneHotCategorical,
    RelaxedOneHotCategoricalStraightThrough,
)
from numpyro_relax.distributions.subset import GumbelSoftmaxTopK

__all__ = [
    "DecoupledStraightThroughGumbelSoftmax",
    "ExpRelaxedOneHotCategorical",
    "GeneralizedGumbelSoftmax",
    "GumbelSoftmaxTopK",
    "OneHotCategorical",
    "RelaxedOneHotCategorical",
    "RelaxedOneHotCategoricalStraightThrough",
]
