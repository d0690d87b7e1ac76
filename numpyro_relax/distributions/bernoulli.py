"""Former home of the binary family, kept so that existing imports keep working.

The classes moved by concept: the straight-through and relaxed bits to
:mod:`numpyro_relax.distributions.bits`, the gates with atoms at 0 and 1 to
:mod:`numpyro_relax.distributions.gates`, the correlated (Gaussian copula) gates to
:mod:`numpyro_relax.distributions.copula`, :class:`LogitNormal` to the Gaussian-based laws in
:mod:`numpyro_relax.distributions.simplex`, the numeric helpers to
:mod:`numpyro_relax.distributions.util` and the correlation-matrix constraint to
:mod:`numpyro_relax.distributions.constraints`. This module only re-exports the old names; new
code should import from ``numpyro_relax.distributions`` (or the modules above).
"""

from numpyro_relax.distributions.bits import (
    LogitRelaxedBernoulli,
    RelaxedBernoulliStraightThrough,
    StochasticTimesSmooth,
    StraightThroughBernoulli,
)
from numpyro_relax.distributions.copula import CorrelatedRelaxedBernoulli
from numpyro_relax.distributions.gates import GaussianRelaxedBernoulli, HardConcrete
from numpyro_relax.distributions.simplex import LogitNormal
from numpyro_relax.distributions.util import (
    bernoulli_entropy,
    bernoulli_kl,
    bernoulli_log_pmf,
    log_sigmoid_both,
    logistic_noise,
    logit,
    normal_interval_mass,
    std_normal_pdf,
    uniform_open,
)

__all__ = [
    "CorrelatedRelaxedBernoulli",
    "GaussianRelaxedBernoulli",
    "HardConcrete",
    "LogitNormal",
    "LogitRelaxedBernoulli",
    "RelaxedBernoulliStraightThrough",
    "StochasticTimesSmooth",
    "StraightThroughBernoulli",
    "bernoulli_entropy",
    "bernoulli_kl",
    "bernoulli_log_pmf",
    "log_sigmoid_both",
    "logistic_noise",
    "logit",
    "normal_interval_mass",
    "std_normal_pdf",
    "uniform_open",
]
