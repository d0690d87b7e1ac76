r"""KL terms involving relaxed laws that have no textbook closed form.

Imported by :mod:`numpyro_relax.distributions` for its side effect (the registrations).

**Relaxed guide, discrete prior (Jang et al.'s objective).** A Concrete law and the discrete law
it relaxes are mutually singular: the true KL between a relaxed posterior and a discrete prior is
:math:`+\infty`. What Jang et al. (2017) optimise instead feeds the *relaxed* sample to the
decoder and charges the KL of the discrete laws behind the relaxation,

.. math::
    \mathrm{KL}\big(\mathrm{Cat}(\mathrm{softmax}\,\ell_q) \,\|\, \mathrm{Cat}(\mathrm{softmax}\,\ell_p)\big)
    \quad\text{(one-hot)}, \qquad
    \mathrm{KL}\big(\mathrm{Bern}(\sigma(\ell_q)) \,\|\, \mathrm{Bern}(\sigma(\ell_p))\big)
    \quad\text{(bits)},

which is the KL between the law of :math:`\arg\max` of the relaxed sample (of the bit rounded at
1/2) and the prior. It is independent of the temperature, and the objective it gives is a bound
neither on the relaxed model nor on the discrete one. These pairs are registered:

- ``kl_divergence(RelaxedOneHotCategorical, OneHotCategorical)``
  (:class:`~numpyro_relax.RelaxedOneHotCategorical`, :class:`~numpyro_relax.OneHotCategorical`);
- ``kl_divergence(RelaxedBernoulliLogits, Bernoulli)`` for NumPyro's own binary Concrete
  (``numpyro.distributions.RelaxedBernoulliLogits``) against ``BernoulliLogits`` /
  ``BernoulliProbs``.

So a guide that relaxes a discrete site (e.g. with
:class:`~numpyro_relax.infer.reparam.RelaxReparam` applied to the guide only) against the
discrete prior of the model, fitted with ``TraceMeanField_ELBO`` (or
:class:`~numpyro_relax.infer.StraightThrough_ELBO`), is Jang et al.'s objective.
(The straight-through classes have their own, exact, registrations in
:mod:`~numpyro_relax.distributions.kl` and :mod:`~numpyro_relax.distributions.kl_bernoulli`: their
forward value *is* discrete.)

**Two hard-concrete gates.** ``kl_divergence(HardConcrete, HardConcrete)``
(:func:`hard_concrete_kl`): the two atoms in closed form, the interior by Gauss-Legendre
quadrature in logit space (deterministic and differentiable; a pathwise Monte Carlo KL is biased
because :math:`\log q - \log p` jumps where a sample reaches an atom).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import RelaxedBernoulliLogits
from numpyro.distributions.discrete import BernoulliLogits, BernoulliProbs
from numpyro.distributions.kl import kl_divergence

from numpyro_relax.distributions.categorical import OneHotCategorical, RelaxedOneHotCategorical
from numpyro_relax.distributions.gates import HardConcrete
from numpyro_relax.distributions.kl import categorical_kl
from numpyro_relax.distributions.util import (
    all_concrete,
    bernoulli_kl,
    log_sigmoid_both,
    probs_to_logits,
)

__all__ = ["hard_concrete_kl"]

#: Gauss-Legendre nodes on (0, 1) and the logs of their weights (which sum to one); numpy, so
#: that importing the module starts no JAX backend.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_UNIT_NODES = (0.5 * (_NODES + 1.0)).astype(np.float32)
_UNIT_LOG_WEIGHTS = np.log(0.5 * _WEIGHTS).astype(np.float32)


@kl_divergence.register(RelaxedOneHotCategorical, OneHotCategorical)
def _kl_relaxed_onehot(p, q):
    """KL of the categorical law behind the relaxation (see the module docstring)."""
    return categorical_kl(p.logits, q.logits)


def _register_relaxed_bernoulli() -> None:
    for q_cls in (BernoulliLogits, BernoulliProbs):

        @kl_divergence.register(RelaxedBernoulliLogits, q_cls)
        def _kl(p, q):
            """KL of the Bernoulli law behind the relaxation (see the module docstring)."""
            if isinstance(q, BernoulliProbs):
                return bernoulli_kl(p.logits, probs_to_logits(q.probs, is_binary=True))
            return bernoulli_kl(p.logits, q.logits)


_register_relaxed_bernoulli()


def hard_concrete_kl(p: HardConcrete, q: HardConcrete) -> jax.Array:
    r"""KL between two hard-concrete gates with the same stretch limits.

    With :math:`y = \mathrm{logit}\, s` (the stretched Concrete before clipping: logistic with
    location :math:`\log\alpha/\beta` and scale :math:`1/\beta`), the gate is 0 for
    :math:`y < y_0 = \mathrm{logit}(-\gamma/(\zeta - \gamma))`, 1 for
    :math:`y > y_1 = \mathrm{logit}((1 - \gamma)/(\zeta - \gamma))` and a bijection of :math:`y`
    in between that does not depend on the temperature, so

    .. math::
        \mathrm{KL} = P_0 \log\frac{P_0}{Q_0} + P_1 \log\frac{P_1}{Q_1}
            + \int_{y_0}^{y_1} p(y) \log\frac{p(y)}{q(y)}\,dy

    (the Jacobian of :math:`y \mapsto z` cancels). The atoms are exact; the integral uses
    64-point Gauss-Legendre on :math:`[y_0, y_1]` (:math:`\pm 2.4` for the default limits), exact
    to float32 precision while the logistic scales :math:`1/\beta` are not much smaller than
    that interval (:math:`\beta \lesssim 5`; gates use :math:`\beta \le 1`). The temperatures may
    differ.

    :param p: the first gate (batch shapes broadcast).
    :param q: the second gate, with the same ``limit_low`` and ``limit_high``.
    :raises ValueError: if the limits differ (checked when they are concrete).
    """
    if all_concrete((p.limit_low == q.limit_low) & (p.limit_high == q.limit_high)) is False:
        raise ValueError(
            "kl_divergence(HardConcrete, HardConcrete): the stretch limits differ; the KL is "
            "implemented for gates with the same limit_low and limit_high."
        )
    y0 = jnp.log(-p.limit_low) - jnp.log(p.limit_high)
    y1 = jnp.log1p(-p.limit_low) - jnp.log(p.limit_high - 1.0)

    def atoms(d: HardConcrete) -> tuple[jax.Array, jax.Array]:
        beta = d.temperature
        return (
            jax.nn.log_sigmoid(beta * y0 - d.log_alpha),
            jax.nn.log_sigmoid(d.log_alpha - beta * y1),
        )

    def log_density(d: HardConcrete, y: jax.Array) -> jax.Array:
        beta = d.temperature[..., None]
        return jnp.log(beta) + log_sigmoid_both(beta * y - d.log_alpha[..., None])

    (p0, p1), (q0, q1) = atoms(p), atoms(q)
    width = y1 - y0
    y = y0[..., None] + width[..., None] * _UNIT_NODES
    lp, lq = log_density(p, y), log_density(q, y)
    inside = jnp.sum(jnp.exp(_UNIT_LOG_WEIGHTS + lp) * (lp - lq), axis=-1) * width
    return jnp.exp(p0) * (p0 - q0) + jnp.exp(p1) * (p1 - q1) + inside


kl_divergence.register(HardConcrete, HardConcrete)(hard_concrete_kl)
