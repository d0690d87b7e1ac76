"""Functional gradient estimators for expectations over discrete random variables.

Every estimator has the signature

.. code-block:: python

    value, grad = estimator(f, logits, key, *, family="bernoulli", num_samples=1, **options)

and estimates :math:`\\mathbb{E}_{b \\sim p_\\theta}[f(b)]` (``value``) and its gradient
:math:`\\nabla_\\theta \\mathbb{E}_{b \\sim p_\\theta}[f(b)]` with respect to the logits
:math:`\\theta` (``grad``, the shape of ``logits``), where

- ``family="bernoulli"``: :math:`b` has the shape of ``logits`` and independent entries
  :math:`b_d \\sim \\mathrm{Bernoulli}(\\sigma(\\theta_d))`, with values in :math:`\\{0, 1\\}`;
- ``family="categorical"``: ``logits`` has shape ``(..., K)`` and :math:`b` is a one-hot array of
  the same shape, independently :math:`b_{v} \\sim \\mathrm{OneHotCategorical}(\\mathrm{softmax}
  (\\theta_{v}))` for every leading index :math:`v`.

``f`` maps **one** sample (an array with the shape of ``logits``) to a scalar. The estimators draw
``num_samples`` independent samples (vectorised with :func:`jax.vmap`) and average. They are pure
functions of ``(logits, key)``: wrap them in :func:`functools.partial` to fix ``f`` and the
options, then ``jax.jit`` / ``jax.vmap`` them.

Unbiased: :func:`reinforce`, :func:`arm`, :func:`disarm`, :func:`arsm`, :func:`rebar` and
:func:`relax`. Biased (pathwise through a relaxation): :func:`gumbel_softmax` and
:func:`straight_through`. :func:`rebar`, :func:`relax`, :func:`gumbel_softmax` and
:func:`straight_through` evaluate ``f`` (or the surrogate) at relaxed, non-discrete inputs, so
``f`` must then be defined and differentiable on the relaxed domain (the unit cube for
``"bernoulli"``, the simplex for ``"categorical"``).

Conventions for the relaxations used by REBAR, RELAX and the pathwise estimators:

- Bernoulli: :math:`z = \\theta + \\log u - \\log(1 - u)` with :math:`u \\sim U(0, 1)` (a
  logistic variable), :math:`b = H(z) = 1[z > 0]`, relaxed sample
  :math:`\\sigma_\\lambda(z) = \\mathrm{sigmoid}(z / \\lambda)`.
- Categorical: :math:`z = \\log\\mathrm{softmax}(\\theta) + g` with :math:`g` standard Gumbel,
  :math:`b = \\mathrm{onehot}(\\arg\\max z)`, relaxed sample
  :math:`\\sigma_\\lambda(z) = \\mathrm{softmax}(z / \\lambda)`.

Uniforms are clamped to ``(tiny, 1 - eps)`` and everything is computed in logit space
(``log_sigmoid``, ``log_softmax``, ``logaddexp``), so logits up to :math:`|\\theta| = 30` in float32
give finite values and gradients.
"""

from __future__ import annotations

# The implementations live in numpyro_relax.infer, around the estimator core; this module is the
# public home of the functional estimators (and keeps the import path users have).
from numpyro_relax.infer.control_variates import rebar, relax, relax_variance_grad
from numpyro_relax.infer.core import uniform as _uniform  # noqa: F401 - used by the tests
from numpyro_relax.infer.functional import (
    decoupled_st,
    gst,
    gumbel_rao,
    gumbel_softmax,
    loo,
    reinmax,
    st,
    st_gumbel,
    straight_through,
    vargrad,
)
from numpyro_relax.infer.relaxation import (  # noqa: F401 - the relaxation's conventions
    _conditional,
    _hard,
    _perturb,
    _soft,
)
from numpyro_relax.infer.score_function import arm, arsm, disarm, reinforce
from numpyro_relax.infer.unbiased import disarm_categorical, double_cv, indecater

__all__ = [
    "arm",
    "arsm",
    "decoupled_st",
    "disarm",
    "disarm_categorical",
    "double_cv",
    "gst",
    "gumbel_rao",
    "gumbel_softmax",
    "indecater",
    "rebar",
    "relax",
    "reinmax",
    "relax_variance_grad",
    "reinforce",
    "loo",
    "st",
    "st_gumbel",
    "straight_through",
    "vargrad",
]
