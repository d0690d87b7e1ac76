"""Exact KL divergences for the binary family, registered for concrete pairs.

Imported by :mod:`numpyro_relax.distributions` for its side effect. The straight-through classes
count as the Bernoulli law their forward value follows (their ``log_prob`` is its pmf), so their
KL to NumPyro's ``Bernoulli`` (``BernoulliProbs``/``BernoulliLogits``) and to each other is the
Bernoulli KL, which is also registered between NumPyro's ``Bernoulli`` classes themselves. ``GaussianRelaxedBernoulli`` pairs have a closed form (atoms plus a truncated-Normal
interior), and a KL between logit-normals is the KL between their Normals (it is invariant under
the sigmoid bijection).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr
from numpyro.distributions.discrete import BernoulliLogits, BernoulliProbs
from numpyro.distributions.kl import kl_divergence

from numpyro_relax.distributions.bits import (
    RelaxedBernoulliStraightThrough,
    StraightThroughBernoulli,
)
from numpyro_relax.distributions.gates import GaussianRelaxedBernoulli
from numpyro_relax.distributions.simplex import LogitNormal
from numpyro_relax.distributions.util import (
    bernoulli_kl,
    normal_interval_mass,
    probs_to_logits,
    std_normal_pdf,
)

__all__ = ["gaussian_relaxed_bernoulli_kl"]


def _logits(d) -> jax.Array:
    if isinstance(d, BernoulliProbs):
        return probs_to_logits(d.probs, is_binary=True)
    return d.logits


_BINARY = (StraightThroughBernoulli, RelaxedBernoulliStraightThrough)
_BERNOULLI = (BernoulliProbs, BernoulliLogits, *_BINARY)


def _register_bernoulli_pairs() -> None:
    # every pair of the Bernoulli law's classes, NumPyro's own included (NumPyro registers none)
    for p_cls in _BERNOULLI:
        for q_cls in _BERNOULLI:

            @kl_divergence.register(p_cls, q_cls)
            def _kl(p, q):
                return bernoulli_kl(_logits(p), _logits(q))


_register_bernoulli_pairs()


def gaussian_relaxed_bernoulli_kl(
    loc_p: jax.Array, scale_p: jax.Array, loc_q: jax.Array, scale_q: jax.Array
) -> jax.Array:
    r"""KL between two stochastic gates :math:`z = \mathrm{clip}(\mu + \sigma\varepsilon, 0, 1)`.

    With :math:`P_0, P_1` (:math:`Q_0, Q_1`) the atom masses and :math:`p, q` the Normal
    densities inside,

    .. math::
        \mathrm{KL} = P_0\log\frac{P_0}{Q_0} + P_1\log\frac{P_1}{Q_1}
          + \int_0^1 p(x)\log\frac{p(x)}{q(x)}\,dx,

    where the integral uses the truncated moments of :math:`\mathcal{N}(\mu_p, \sigma_p^2)` on
    :math:`(0, 1)`: with :math:`a = -\mu_p/\sigma_p`, :math:`b = (1-\mu_p)/\sigma_p`,
    :math:`M_0 = \Phi(b)-\Phi(a)`,

    .. math::
        \int_0^1 p\log\frac{p}{q} = M_0\log\frac{\sigma_q}{\sigma_p}
          - \tfrac12\big(M_0 + a\phi(a) - b\phi(b)\big)
          + \frac{\int_0^1 (x-\mu_q)^2 p(x)\,dx}{2\sigma_q^2}.
    """
    a = -loc_p / scale_p
    b = (1 - loc_p) / scale_p
    m0 = normal_interval_mass(a, b)
    pa, pb = std_normal_pdf(a), std_normal_pdf(b)
    # int (x - mu_q)^2 p(x) dx over (0, 1), with x - mu_q = (mu_p - mu_q) + sigma_p t
    d = loc_p - loc_q
    second = d**2 * m0 + 2 * d * scale_p * (pa - pb) + scale_p**2 * (m0 + a * pa - b * pb)
    inside = (
        m0 * (jnp.log(scale_q) - jnp.log(scale_p))
        - 0.5 * (m0 + a * pa - b * pb)
        + second / (2 * scale_q**2)
    )
    lp0, lq0 = log_ndtr(-loc_p / scale_p), log_ndtr(-loc_q / scale_q)
    lp1, lq1 = log_ndtr((loc_p - 1) / scale_p), log_ndtr((loc_q - 1) / scale_q)
    atoms = jnp.exp(lp0) * (lp0 - lq0) + jnp.exp(lp1) * (lp1 - lq1)
    return atoms + inside


@kl_divergence.register(GaussianRelaxedBernoulli, GaussianRelaxedBernoulli)
def _kl_grb_grb(p, q):
    return gaussian_relaxed_bernoulli_kl(p.loc, p.scale, q.loc, q.scale)


@kl_divergence.register(LogitNormal, LogitNormal)
def _kl_logitnormal_logitnormal(p, q):
    return kl_divergence(p.base_dist, q.base_dist)
