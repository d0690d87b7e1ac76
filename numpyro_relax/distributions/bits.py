"""Straight-through and relaxed Bernoulli bits: the binary family without atoms.

Classes with a ``probs``/``logits`` pair take exactly one of them (keyword), like NumPyro's
``Bernoulli``, and compute with logits (``probs`` is a lazy property unless it was given).
Noise is drawn with one variable per element of ``sample_shape + batch_shape + event_shape``;
uniforms are clamped to ``(tiny, 1 - eps)`` and logistic noise is formed as
``log u - log1p(-u)`` (:mod:`numpyro_relax.distributions.util`), so samples, log densities and
gradients stay finite in float32 down to temperature ``1e-2`` and for logits up to ``+-30``.
The gates with atoms at 0 and 1 are in :mod:`numpyro_relax.distributions.gates`, the
correlated gates in :mod:`numpyro_relax.distributions.copula`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import vmap_over
from numpyro.distributions.distribution import Distribution
from numpyro.distributions.util import lazy_property, validate_sample

from numpyro_relax.distributions.util import (
    bernoulli_entropy,
    bernoulli_log_pmf,
    broadcast_batch,
    check_positive,
    clamp_probs,
    log1mexp,
    log_sigmoid_both,
    logistic_noise,
    logit,
    select_logits,
    straight_through,
    uniform_open,
    validation_on,
    vmap_over_logits,
)

__all__ = [
    "LogitRelaxedBernoulli",
    "RelaxedBernoulliStraightThrough",
    "StochasticTimesSmooth",
    "StraightThroughBernoulli",
]


class _BinaryLogits(Distribution):
    """Shared set-up: binary logits, ``probs`` lazily, temperatures broadcast to the batch."""

    pytree_data_fields = ("logits",)

    def _setup(
        self,
        probs: ArrayLike | None,
        logits: ArrayLike | None,
        validate_args: bool | None,
        **temperatures: ArrayLike,
    ) -> None:
        name = type(self).__name__
        logits, probs = select_logits(name, probs, logits, is_binary=True)
        validate = validation_on(self, validate_args)
        temps = {k: check_positive(name, k, v, validate=validate) for k, v in temperatures.items()}
        batch_shape = broadcast_batch(
            name, **{k: jnp.shape(v) for k, v in temps.items()}, logits=jnp.shape(logits)
        )
        self.logits = jnp.broadcast_to(logits, batch_shape)
        if probs is not None:
            self.probs = jnp.broadcast_to(probs, batch_shape)
        for k, v in temps.items():
            setattr(self, k, jnp.broadcast_to(v, batch_shape))
        super().__init__(batch_shape, (), validate_args=validate_args)

    @lazy_property
    def probs(self) -> jax.Array:
        return jax.nn.sigmoid(self.logits)

    def _shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sample_shape) + self.batch_shape + self.event_shape


class _BernoulliMoments:
    """Moments of the Bernoulli law that a straight-through forward value follows."""

    logits: jax.Array
    probs: jax.Array

    @property
    def mean(self) -> jax.Array:
        return self.probs

    @property
    def variance(self) -> jax.Array:
        return jax.nn.sigmoid(self.logits) * jax.nn.sigmoid(-self.logits)

    @property
    def mode(self) -> jax.Array:
        return (self.logits > 0).astype(self.logits.dtype)

    def entropy(self) -> jax.Array:
        return bernoulli_entropy(self.logits)

    def cdf(self, value: ArrayLike) -> jax.Array:
        value = jnp.asarray(value)
        return jnp.where(value < 0, 0.0, jnp.where(value < 1, jax.nn.sigmoid(-self.logits), 1.0))

    def icdf(self, q: ArrayLike) -> jax.Array:
        return (jnp.asarray(q) > jax.nn.sigmoid(-self.logits)).astype(self.logits.dtype)


# ------------------------------------------------------------------------------------------
# straight-through and relaxed Bernoulli
# ------------------------------------------------------------------------------------------
class StraightThroughBernoulli(_BernoulliMoments, _BinaryLogits):
    r"""Straight-through Bernoulli: exact Bernoulli forward value, identity gradient backward.

    .. math::
        b = \mathbb{1}[\ell + L > 0] \sim \mathrm{Bernoulli}(p), \qquad
        z = b + \big(p - \mathrm{sg}(p)\big), \qquad L \sim \mathrm{Logistic}(0, 1),

    so the forward value is exactly 0 or 1 and :math:`\partial z / \partial p = 1` (the
    straight-through estimator of Bengio et al.; :math:`\mathrm{sg}` is ``stop_gradient``).
    ``log_prob`` is the Bernoulli pmf

    .. math::
        \log p(z) = z \log p + (1 - z) \log (1 - p),

    so the KL to a NumPyro ``Bernoulli`` prior is exact. The support is declared as the unit
    interval, not as the discrete set :math:`\{0, 1\}`: SVI would refuse a discrete guide site.

    :param probs: probability :math:`p` of a one (exactly one of ``probs``/``logits``).
    :param logits: log-odds :math:`\ell`.

    **References:**

    1. *Estimating or Propagating Gradients Through Stochastic Neurons for Conditional
       Computation*, Y. Bengio, N. Leonard, A. Courville (arXiv:1308.3432, 2013).
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    pytree_data_fields = ("logits",)
    reparametrized_params = ["probs", "logits"]
    support = constraints.unit_interval

    def __init__(
        self,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._setup(probs, logits, validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        g = logistic_noise(key, self._shape(sample_shape), self.logits.dtype)
        hard = (self.logits + g > 0).astype(self.logits.dtype)
        return straight_through(hard, self.probs)

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        return bernoulli_log_pmf(value, self.logits)


class _TemperedBinaryLogits(_BinaryLogits):
    """Binary laws with a temperature, parameterised like ``Bernoulli`` (``probs``/``logits``),
    whose samples are built from the binary Concrete logit :math:`(\\ell + L)/\\tau`."""

    arg_constraints = {
        "temperature": constraints.positive,
        "probs": constraints.unit_interval,
        "logits": constraints.real,
    }
    pytree_data_fields = ("temperature", "logits")
    reparametrized_params = ["temperature", "probs", "logits"]

    def __init__(
        self,
        temperature: ArrayLike,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._setup(probs, logits, validate_args, temperature=temperature)

    def _logistic_logit(self, key: jax.Array, sample_shape: tuple[int, ...]) -> jax.Array:
        """:math:`(\\ell + L)/\\tau` with standard logistic noise :math:`L`, one per element."""
        g = logistic_noise(key, self._shape(sample_shape), self.logits.dtype)
        return (self.logits + g) / self.temperature


class LogitRelaxedBernoulli(_TemperedBinaryLogits):
    r"""Binary Concrete in logit space (Maddison et al., 2017): the logit of a relaxed Bernoulli.

    .. math::
        y = (\ell + L)/\tau, \qquad L = \log u - \log(1 - u), \quad u \sim \mathcal{U}(0, 1),

    so :math:`y \sim \mathrm{Logistic}(\ell/\tau, 1/\tau)` with density

    .. math::
        \log p(y) = \log\tau + \log\sigma(\tau y - \ell) + \log\sigma(\ell - \tau y).

    :math:`\sigma(y)` is a binary Concrete (``RelaxedBernoulli``) sample. Working with :math:`y`
    keeps log densities exact at low temperature, where :math:`\sigma(y)` rounds to 0 or 1 in
    float32; use it for ELBO/KL terms (both sides of a KL in logit space).

    :param temperature: positive temperature :math:`\tau`.
    :param probs: probability of a one (exactly one of ``probs``/``logits``).
    :param logits: log-odds :math:`\ell`.

    **References:**

    1. *The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables*,
       C. J. Maddison, A. Mnih, Y. W. Teh (ICLR 2017), appendix B and C.
    """

    support = constraints.real

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self._logistic_logit(key, sample_shape)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        z = self.temperature * value - self.logits
        return jnp.log(self.temperature) + log_sigmoid_both(z)

    @property
    def mean(self) -> jax.Array:
        return self.logits / self.temperature

    @property
    def mode(self) -> jax.Array:
        return self.logits / self.temperature

    @property
    def variance(self) -> jax.Array:
        return (math.pi**2 / 3) / jnp.square(self.temperature)

    def entropy(self) -> jax.Array:
        return 2.0 - jnp.log(self.temperature)

    def cdf(self, value: ArrayLike) -> jax.Array:
        return jax.nn.sigmoid(self.temperature * value - self.logits)

    def icdf(self, q: ArrayLike) -> jax.Array:
        return (self.logits + logit(q)) / self.temperature


class RelaxedBernoulliStraightThrough(_BernoulliMoments, _TemperedBinaryLogits):
    r"""Straight-through binary Concrete: rounded forward, relaxed gradient backward.

    .. math::
        y = (\ell + L)/\tau, \qquad z = \mathbb{1}[y > 0] + \big(\sigma(y) - \mathrm{sg}(\sigma(y))\big),

    with :math:`L` standard logistic noise. The forward value is an exact
    :math:`\mathrm{Bernoulli}(\sigma(\ell))` sample (rounding does not depend on :math:`\tau`);
    gradients are those of the relaxed sample :math:`\sigma(y)`, a biased estimator.
    ``log_prob`` is the Bernoulli pmf :math:`z\log p + (1-z)\log(1-p)`, so the KL to a
    ``Bernoulli`` prior is exact. The support is declared as the unit interval, not the
    discrete set :math:`\{0, 1\}` (SVI would refuse a discrete guide site).

    :param temperature: positive temperature :math:`\tau` of the backward relaxation.
    :param probs: probability of a one (exactly one of ``probs``/``logits``).
    :param logits: log-odds :math:`\ell`.

    **References:**

    1. *Categorical Reparameterization with Gumbel-Softmax*, E. Jang, S. Gu, B. Poole (ICLR 2017).
    2. *The Concrete Distribution*, C. J. Maddison, A. Mnih, Y. W. Teh (ICLR 2017).
    """

    support = constraints.unit_interval

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        y = self._logistic_logit(key, sample_shape)
        return straight_through((y > 0).astype(y.dtype), jax.nn.sigmoid(y))

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        return bernoulli_log_pmf(value, self.logits)


class StochasticTimesSmooth(_BinaryLogits):
    r"""Stochastic times smooth unit (Bengio et al., 2013).

    .. math::
        b \sim \mathrm{Bernoulli}(\sqrt{p}), \qquad z = b\,\sqrt{p},

    so :math:`\mathbb{E}[z] = p` and :math:`\partial z/\partial p = b/(2\sqrt{p})` (the
    gradient flows through the smooth factor). The law of :math:`z` is the two-point law on
    :math:`\{0, \sqrt{p}\}`,

    .. math::
        \log p(z) = \log(1 - \sqrt{p}) \ \text{at } z = 0, \qquad
        \log p(z) = \log\sqrt{p} \ \text{at } z = \sqrt{p},

    computed from :math:`\log\sqrt{p} = \tfrac12\log\sigma(\ell)`. ``log_prob`` decides the
    atom by ``value > 0``, so a sample whose :math:`\sqrt{p}` was computed along a different
    float path (or that carries a gradient) is still scored on the right atom; it is not the
    pmf of :math:`\mathrm{Bernoulli}(p)`. The support is declared as the unit interval.

    :param probs: :math:`p`, the mean of :math:`z` (exactly one of ``probs``/``logits``).
    :param logits: log-odds :math:`\ell` of :math:`p`.

    **References:**

    1. *Estimating or Propagating Gradients Through Stochastic Neurons for Conditional
       Computation*, Y. Bengio, N. Leonard, A. Courville (arXiv:1308.3432, 2013), section 5.
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    pytree_data_fields = ("logits",)
    reparametrized_params = ["probs", "logits"]
    support = constraints.unit_interval

    def __init__(
        self,
        probs: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        *,
        validate_args: bool | None = None,
    ) -> None:
        self._setup(probs, logits, validate_args)

    @property
    def log_gate_prob(self) -> jax.Array:
        r""":math:`\log\sqrt{p}`, the log-probability that the unit fires."""
        if "probs" in self.__dict__:
            return 0.5 * jnp.log(clamp_probs(self.probs))
        return 0.5 * jax.nn.log_sigmoid(self.logits)

    @property
    def gate_prob(self) -> jax.Array:
        r""":math:`\sqrt{p}`, the probability that the unit fires (and its value when it does)."""
        return jnp.exp(self.log_gate_prob)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        u = uniform_open(key, self._shape(sample_shape), self.logits.dtype)
        log_q = self.log_gate_prob
        b = (jnp.log(u) < lax.stop_gradient(log_q)).astype(u.dtype)
        return b * jnp.exp(log_q)

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        log_q = self.log_gate_prob
        return jnp.where(jnp.asarray(value) > 0, log_q, log1mexp(log_q))

    @property
    def mean(self) -> jax.Array:
        return jnp.exp(2 * self.log_gate_prob)

    @property
    def variance(self) -> jax.Array:
        q = self.gate_prob
        return q**3 * (1 - q)

    @property
    def mode(self) -> jax.Array:
        q = self.gate_prob
        return jnp.where(q > 0.5, q, 0.0)

    def entropy(self) -> jax.Array:
        log_q = self.log_gate_prob
        log_1mq = log1mexp(log_q)
        return -(jnp.exp(log_q) * log_q + jnp.exp(log_1mq) * log_1mq)

    def cdf(self, value: ArrayLike) -> jax.Array:
        value = jnp.asarray(value)
        q = self.gate_prob
        return jnp.where(value < 0, 0.0, jnp.where(value < q, 1 - q, 1.0))

    def icdf(self, q: ArrayLike) -> jax.Array:
        gate = self.gate_prob
        return jnp.where(jnp.asarray(q) > 1 - gate, gate, 0.0)


@vmap_over.register
def _(dist: StraightThroughBernoulli, probs=None, logits=None):
    return vmap_over_logits(dist, probs=probs, logits=logits)


@vmap_over.register
def _(dist: StochasticTimesSmooth, probs=None, logits=None):
    return vmap_over_logits(dist, probs=probs, logits=logits)


@vmap_over.register
def _(dist: LogitRelaxedBernoulli, temperature=None, probs=None, logits=None):
    return vmap_over_logits(dist, probs=probs, logits=logits, temperature=temperature)


@vmap_over.register
def _(dist: RelaxedBernoulliStraightThrough, temperature=None, probs=None, logits=None):
    return vmap_over_logits(dist, probs=probs, logits=logits, temperature=temperature)
