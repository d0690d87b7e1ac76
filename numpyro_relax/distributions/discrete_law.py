r"""The discrete law behind a relaxed sample.

A relaxation is scored, in the end, on the discrete model it relaxes: a sample :math:`x` on the
simplex stands for the vertex :math:`\arg\max_k x_k`, and a gate :math:`z \in [0, 1]` for the
bit :math:`1[z > 1/2]`. :func:`discrete_law` returns the law of that hard value, as a
:class:`~numpyro_relax.OneHotCategorical` or a NumPyro ``Bernoulli`` with the relaxed
distribution's batch shape (wrappers ``expand``/``to_event``/``mask`` are kept), so that the
relaxed posterior of a VAE can be evaluated as the discrete guide it stands for (exact KL to a
discrete prior, importance weights of hard samples).

- the Gumbel-softmax family (``ExpRelaxedOneHotCategorical``, ``RelaxedOneHotCategorical``,
  its straight-through version): :math:`\mathrm{Cat}(\mathrm{softmax}\,\ell)`;
- ``DecoupledStraightThroughGumbelSoftmax``: :math:`\mathrm{Cat}(\mathrm{softmax}(\ell/\tau_f))`;
- ``InvertibleGaussian`` (IGR): the argmax of :math:`[\mu + \sigma\varepsilon,\ \tau\log\delta]`
  (:func:`argmax_normal_log_probs`);
- ``LogisticNormalSoftmax``: the argmax of :math:`\mu + s\varepsilon`;
- binary Concretes (``LogitRelaxedBernoulli``, NumPyro's ``RelaxedBernoulliLogits``,
  :class:`~numpyro_relax.infer.reparam.RelaxReparam`'s sigmoid of it, the straight-through
  versions): :math:`\mathrm{Bern}(\sigma(\ell))`;
- ``GaussianRelaxedBernoulli``: :math:`\mathrm{Bern}(\Phi((\mu - 1/2)/\sigma))`;
- ``HardConcrete``: :math:`\mathrm{Bern}(\sigma(\log\alpha - \beta\,\mathrm{logit}\,s^*))` with
  :math:`s^* = (1/2 - \gamma)/(\zeta - \gamma)`;
- ``LogitNormal``: :math:`\mathrm{Bern}(\Phi(\mu/s))`;
- ``StochasticTimesSmooth``: its bit :math:`b \sim \mathrm{Bern}(\sqrt p)` (the value is
  :math:`b\sqrt p`).

``LogitRelaxedBernoulli`` is in logit space: its hard value is :math:`1[y > 0]`, the same bit.
Other distributions (``CorrelatedRelaxedBernoulli``, whose rounded gates are correlated;
``LogisticNormal`` with a full covariance; subset relaxations) raise ``NotImplementedError``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import log_ndtr, logsumexp, ndtri
from jax.typing import ArrayLike
from numpyro.distributions import (
    BernoulliLogits,
    BernoulliProbs,
    Distribution,
    ExpandedDistribution,
    Independent,
    MaskedDistribution,
    RelaxedBernoulliLogits,
    TransformedDistribution,
)
from numpyro.distributions.transforms import SigmoidTransform

from numpyro_relax.distributions.bits import (
    LogitRelaxedBernoulli,
    RelaxedBernoulliStraightThrough,
    StochasticTimesSmooth,
    StraightThroughBernoulli,
)
from numpyro_relax.distributions.categorical import (
    DecoupledStraightThroughGumbelSoftmax,
    ExpRelaxedOneHotCategorical,
    OneHotCategorical,
)
from numpyro_relax.distributions.gates import GaussianRelaxedBernoulli, HardConcrete
from numpyro_relax.distributions.simplex import (
    InvertibleGaussian,
    LogisticNormalSoftmax,
    LogitNormal,
)
from numpyro_relax.distributions.util import log1mexp

__all__ = ["argmax_normal_log_probs", "discrete_law"]

#: Quadrature on (0, 1) for the winner's tail probability: 64-point Gauss-Legendre in :math:`v`
#: with :math:`u = 3v^2 - 2v^3`, which puts nodes densely at both tails (numpy: importing the
#: module starts no JAX backend).
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_V = 0.5 * (_NODES + 1.0)
_TAIL_PROBS = (3 * _V**2 - 2 * _V**3).astype(np.float32)
_LOG_WEIGHTS = np.log(0.5 * _WEIGHTS * 6 * _V * (1 - _V)).astype(np.float32)


def argmax_normal_log_probs(
    loc: ArrayLike, scale: ArrayLike, threshold: ArrayLike | None = None
) -> jax.Array:
    r"""Log-probabilities of :math:`\arg\max_k z_k` for independent :math:`z_k \sim
    N(\mu_k, \sigma_k^2)`, optionally with one more coordinate fixed at ``threshold`` :math:`c`.

    .. math::
        P(\arg\max = k) = \Phi\big(\tfrac{\mu_k - c}{\sigma_k}\big)\,
            \mathbb E\Big[\prod_{j \ne k} \Phi\big(\tfrac{t - \mu_j}{\sigma_j}\big)\Big],
        \quad t \sim N(\mu_k, \sigma_k^2) \text{ truncated to } t > c,

    by 64-point Gauss-Legendre quadrature in the truncated law's upper-tail probability
    :math:`u = 3v^2 - 2v^3` (nodes dense in both tails; absolute error below :math:`10^{-4}` in the
    tests, where adaptive quadrature is the reference), with :math:`c = -\infty` when there is no
    fixed coordinate. The
    fixed coordinate, appended last, has probability :math:`\prod_j \Phi((c - \mu_j)/\sigma_j)`
    (e.g. IGR's residual category: :math:`c = \tau\log\delta`). The result is normalised over
    the last axis.

    :param loc: :math:`\mu`, shape ``(..., K)``.
    :param scale: :math:`\sigma > 0`, broadcastable with ``loc``.
    :param threshold: :math:`c`, broadcastable to ``loc.shape[:-1]``, or ``None``.
    :return: log-probabilities, shape ``(..., K)``, or ``(..., K + 1)`` with a threshold.
    """
    loc, scale = jnp.broadcast_arrays(jnp.asarray(loc, float), jnp.asarray(scale, float))
    if threshold is None:
        log_mass = jnp.zeros_like(loc)
    else:
        c = jnp.asarray(threshold, loc.dtype)[..., None]
        log_mass = log_ndtr((loc - c) / scale)  # P(z_k > c)
    # t = mu - sigma Phi^{-1}(mass (1 - v)): the upper tail, written without cancellation
    tiny = jnp.finfo(loc.dtype).tiny
    u = jnp.exp(log_mass)[..., None] * _TAIL_PROBS
    t = loc[..., None] - scale[..., None] * ndtri(jnp.clip(u, tiny, 1.0))  # (..., K, n)
    z = (t[..., :, None, :] - loc[..., None, :, None]) / scale[..., None, :, None]
    off_diagonal = ~jnp.eye(loc.shape[-1], dtype=bool)[:, :, None]
    log_cdf = jnp.sum(jnp.where(off_diagonal, log_ndtr(z), 0.0), axis=-2)  # (..., K, n)
    log_p = log_mass + logsumexp(log_cdf + _LOG_WEIGHTS, axis=-1)
    if threshold is not None:
        log_rest = jnp.sum(log_ndtr((c - loc) / scale), axis=-1, keepdims=True)
        log_p = jnp.concatenate([log_p, log_rest], axis=-1)
    return jax.nn.log_softmax(log_p, axis=-1)


def _probit_logits(d: ArrayLike) -> jax.Array:
    """Log-odds of :math:`\\Phi(d)`: :math:`\\log\\Phi(d) - \\log\\Phi(-d)`."""
    return log_ndtr(d) - log_ndtr(-d)


def discrete_law(d: Distribution) -> Distribution:
    """The law of the hard value (argmax vertex, or bit rounded at 1/2) behind ``d``'s samples.

    See the module docstring for the table. Discrete laws (``OneHotCategorical``,
    ``Bernoulli``) are returned unchanged; ``ExpandedDistribution``, ``Independent`` and
    ``MaskedDistribution`` wrappers are unwrapped and put back around the result.

    :param d: a relaxed distribution of this package or NumPyro's ``RelaxedBernoulliLogits``.
    :return: a ``OneHotCategorical`` (one-hot and simplex relaxations) or a ``Bernoulli``.
    :raises NotImplementedError: for distributions without a product-form hard law here.
    """
    if isinstance(d, Independent):
        return discrete_law(d.base_dist).to_event(d.reinterpreted_batch_ndims)
    if isinstance(d, ExpandedDistribution):
        return discrete_law(d.base_dist).expand(d.batch_shape)
    if isinstance(d, MaskedDistribution):
        return discrete_law(d.base_dist).mask(d._mask)
    if isinstance(d, (OneHotCategorical, BernoulliLogits, BernoulliProbs)):
        return d
    if isinstance(d, ExpRelaxedOneHotCategorical):
        return OneHotCategorical(logits=d.logits)
    if isinstance(d, DecoupledStraightThroughGumbelSoftmax):
        return OneHotCategorical(logits=d.forward_logits)
    if isinstance(d, InvertibleGaussian):
        c = d.temperature * jnp.log(d.delta)
        return OneHotCategorical(logits=argmax_normal_log_probs(d.loc, d.scale, c))
    if isinstance(d, LogisticNormalSoftmax):
        return OneHotCategorical(logits=argmax_normal_log_probs(d.loc, d.scale))
    if isinstance(
        d,
        (
            LogitRelaxedBernoulli,
            RelaxedBernoulliStraightThrough,
            StraightThroughBernoulli,
            RelaxedBernoulliLogits,
        ),
    ):
        return BernoulliLogits(d.logits)
    if isinstance(d, GaussianRelaxedBernoulli):
        return BernoulliLogits(_probit_logits((d.loc - 0.5) / d.scale))
    if isinstance(d, HardConcrete):
        s = (0.5 - d.limit_low) / (d.limit_high - d.limit_low)  # z > 1/2  <=>  s > s*
        return BernoulliLogits(d.log_alpha - d.temperature * (jnp.log(s) - jnp.log1p(-s)))
    if isinstance(d, LogitNormal):
        return BernoulliLogits(_probit_logits(d.loc / d.scale))
    if isinstance(d, StochasticTimesSmooth):
        log_q = d.log_gate_prob  # log sqrt(p), the log-probability of the bit
        return BernoulliLogits(log_q - log1mexp(log_q))
    if isinstance(d, TransformedDistribution) and len(d.transforms) == 1:
        if isinstance(d.transforms[0], SigmoidTransform):  # e.g. RelaxReparam's binary Concrete
            base = discrete_law(d.base_dist)  # sigmoid(y) > 1/2  <=>  y > 0
            if isinstance(base, (BernoulliLogits, BernoulliProbs)):
                return base
    raise NotImplementedError(
        f"discrete_law: no hard-value law for {type(d).__name__} (see "
        "numpyro_relax.distributions.discrete_law for the distributions it covers)."
    )
