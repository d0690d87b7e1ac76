"""Relaxed discrete distributions for NumPyro, by family.

One module per concept: ``categorical`` (one-hot), ``subset`` (k-hot), ``bits`` (straight-through
and relaxed Bernoulli), ``gates`` (gates with atoms at 0 and 1), ``copula`` (correlated gates),
``simplex`` (the Gaussian-based laws, ``LogitNormal`` included), ``discrete_law``; the shared
numerics in the private ``util``; ``constraints`` and ``transforms``. ``bernoulli`` is the former
binary module, kept as an alias.

Every KL divergence is registered (``kl_divergence.register``, concrete pairs only) in one of
four modules, by the kind of pair, never beside a class: ``kl`` the exact KLs between one-hot
(categorical) laws, straight-through forward laws included, and ``categorical_kl``; ``kl_bernoulli``
the exact KLs of the binary family (Bernoulli and straight-through bits, STG gates,
logit-normals); ``kl_relaxed`` the KL terms of a relaxed law that have no textbook closed form
(a relaxed guide against the discrete prior it relaxes, hard concrete pairs); ``kl_simplex`` the
exact KLs between the Gaussian-based simplex laws. All four are imported here for their side
effect.
"""

# The kl modules are imported for their side effect: they register the exact KL divergences.
from numpyro_relax.distributions import kl, kl_bernoulli, kl_relaxed, kl_simplex  # noqa: F401
from numpyro_relax.distributions.bits import (
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
from numpyro_relax.distributions.copula import (
    CorrelatedRelaxedBernoulli,
    LogitCorrelatedRelaxedBernoulli,
)
from numpyro_relax.distributions.gates import GaussianRelaxedBernoulli, HardConcrete
from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormal,
    LogisticNormalSoftmax,
    LogitNormal,
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
