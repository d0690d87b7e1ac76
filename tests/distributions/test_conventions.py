"""NumPyro's argument-checking convention, for every public distribution (issue #13).

With validation disabled (``numpyro.validation_enabled(False)``), out-of-support parameters
construct, as for every NumPyro distribution; with ``validate_args=True`` they are a
``ValueError``. Every name of ``numpyro_relax.distributions.__all__`` must have an entry below,
so a new class cannot miss the check.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro
import pytest
from numpyro.distributions.transforms import biject_to

import numpyro_relax.distributions as nrd
from numpyro_relax.distributions import constraints

BAD_PROBS = jnp.array([1.5, -0.2])
NON_SIMPLEX = jnp.array([0.5, 0.9])
NON_CORRELATION = jnp.array([[2.0, 3.0], [0.0, 1.0]])

#: class name -> out-of-support parameters (every entry is invalid in at least one way)
OUT_OF_SUPPORT = {
    "StraightThroughBernoulli": dict(probs=BAD_PROBS),
    "StochasticTimesSmooth": dict(probs=BAD_PROBS),
    "LogitRelaxedBernoulli": dict(temperature=-1.0, probs=BAD_PROBS),
    "RelaxedBernoulliStraightThrough": dict(temperature=-1.0, probs=BAD_PROBS),
    "OneHotCategorical": dict(probs=NON_SIMPLEX),
    "RelaxedOneHotCategorical": dict(temperature=-1.0, probs=NON_SIMPLEX),
    "ExpRelaxedOneHotCategorical": dict(temperature=-1.0, probs=NON_SIMPLEX),
    "RelaxedOneHotCategoricalStraightThrough": dict(temperature=-1.0, probs=NON_SIMPLEX),
    "DecoupledStraightThroughGumbelSoftmax": dict(
        temperature_forward=-1.0, temperature_backward=0.0, probs=NON_SIMPLEX
    ),
    "GeneralizedGumbelSoftmax": dict(
        values=jnp.array([0.0, 1.0]), temperature=-1.0, probs=NON_SIMPLEX
    ),
    "GumbelSoftmaxTopK": dict(k=1, temperature=-1.0, probs=jnp.array([0.5, 0.9, 0.3])),
    "CorrelatedRelaxedBernoulli": dict(
        probs=jnp.array([1.5, 0.5]), correlation=NON_CORRELATION, temperature=-1.0
    ),
    "LogitCorrelatedRelaxedBernoulli": dict(
        probs=jnp.array([1.5, 0.5]), correlation=NON_CORRELATION, temperature=-1.0
    ),
    "GaussianRelaxedBernoulli": dict(loc=0.0, scale=-1.0),
    "HardConcrete": dict(log_alpha=0.0, temperature=-1.0, limit_low=0.5, limit_high=0.5),
    "LogitNormal": dict(loc=0.0, scale=-1.0),
    "InvertibleGaussian": dict(loc=jnp.zeros(2), scale=-jnp.ones(2), temperature=-1.0, delta=-1.0),
    "LogisticNormal": dict(loc=jnp.zeros(2), scale_tril=jnp.array([[-1.0, 0.0], [1.0, 1.0]])),
    "LogisticNormalSoftmax": dict(loc=jnp.zeros(3), scale=-jnp.ones(3)),
}


def test_every_public_class_has_an_entry():
    assert sorted(OUT_OF_SUPPORT) == sorted(nrd.__all__)


@pytest.mark.parametrize("name", sorted(OUT_OF_SUPPORT))
def test_out_of_support_constructs_without_validation(name):
    cls, params = getattr(nrd, name), OUT_OF_SUPPORT[name]
    with numpyro.validation_enabled(False):
        cls(**params)
    cls(**params, validate_args=False)


@pytest.mark.parametrize("name", sorted(OUT_OF_SUPPORT))
def test_out_of_support_is_a_value_error_with_validation(name):
    cls, params = getattr(nrd, name), OUT_OF_SUPPORT[name]
    with pytest.raises(ValueError):
        cls(**params, validate_args=True)


@pytest.mark.parametrize("param", ["temperature", "probs", "correlation"])
def test_the_error_names_the_parameter(param):
    good = dict(probs=jnp.array([0.3, 0.5]), correlation=jnp.eye(2), temperature=0.5)
    bad = dict(good, **{param: OUT_OF_SUPPORT["CorrelatedRelaxedBernoulli"][param]})
    with pytest.raises(ValueError, match=param):
        nrd.CorrelatedRelaxedBernoulli(**bad, validate_args=True)


def test_correlation_matrix_constraint():
    c = constraints.correlation_matrix
    assert bool(c(jnp.array([[1.0, 0.3], [0.3, 1.0]])))
    assert not bool(c(NON_CORRELATION))
    assert not bool(c(jnp.array([[1.0, 1.5], [1.5, 1.0]])))  # not positive definite
    t = biject_to(c)
    assert bool(c(t(jnp.array([0.7]))))


def test_relaxed_k_hot_has_no_bijection_and_says_why():
    with pytest.raises(NotImplementedError, match="log_prob only at hard k-hot values"):
        biject_to(constraints.relaxed_k_hot(2))
