"""Relaxed discrete distributions for NumPyro, by family (one-hot, subset, binary, simplex)."""

# The kl modules are imported for their side effect: they register the exact KL divergences.
from numpyro_relax.distributions import kl, kl_bernoulli, kl_relaxed, kl_simplex  # noqa: F401
from numpyro_relax.distributions.bernoulli import (
    CorrelatedRelaxedBernoulli,
    GaussianRelaxedBernoulli,
    HardConcrete,
    LogitNormal,
    LogitRelaxedBernoulli,
    RelaxedBernoulliStraightThrough,
    StochasticTimesSmooth,
    StraightThroughBernoulli,
)
from numpyro_relax.distributions.categorical import (
    DecoupledStraightThroughGumbelSoftmax,
    ExpRelaxedOneHotCategorical,
    GeneralizedGumbelSoftmax,
    OneHotCategorical,
    RelaxedOneHotCategorical,
    RelaxedOneHotCategoricalStraightThrough,
)
from numpyro_relax.distributions.copula import LogitCorrelatedRelaxedBernoulli
from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
)
from numpyro_relax.distributions.subset import GumbelSoftmaxTopK

__all__ = [
    "CorrelatedRelaxedBernoulli",
    "DecoupledStraightThroughGumbelSoftmax",
    "ExpRelaxedOneHotCategorical",
    "GaussianRelaxedBernoulli",
    "GeneralizedGumbelSoftmax",
    "GumbelSoftmaxTopK",
    "HardConcrete",
    "InvertibleGaussian",
    "LogisticNormal",
    "LogisticNormalSoftmax",
    "LogitCorrelatedRelaxedBernoulli",
    "LogitNormal",
    "LogitRelaxedBernoulli",
    "OneHotCategorical",
    "RelaxedBernoulliStraightThrough",
    "RelaxedOneHotCategorical",
    "RelaxedOneHotCategoricalStraightThrough",
    "StochasticTimesSmooth",
    "StraightThroughBernoulli",
]
