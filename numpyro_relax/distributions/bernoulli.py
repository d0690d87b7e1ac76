"""The binary family: straight-through and relaxed Bernoulli variables, and stochastic gates.

Classes with a ``probs``/``logits`` pair take exactly one of them (keyword), like NumPyro's
``Bernoulli``, and compute with logits (``probs`` is a lazy property unless it was given).
Noise is drawn with one variable per element of ``sample_shape + batch_shape + event_shape``;
uniforms are clamped to ``(tiny, 1 - eps)`` and logistic noise is formed as
``log u - log1p(-u)``, so samples, log densities and gradients stay finite in float32 down to
temperature ``1e-2`` and for logits up to ``+-30``.

The gates with atoms at 0 and 1 (:class:`GaussianRelaxedBernoulli`, :class:`HardConcrete`) have
mixed laws; their ``log_prob`` is the log-mass of the atom at exactly 0 or 1 and the log
density inside, a density with respect to Lebesgue plus counting measure.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax, random
from jax.scipy import special
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import _default_vmap_over, vmap_over
from numpyro.distributions.continuous import Normal, RelaxedBernoulliLogits
from numpyro.distributions.distribution import Distribution, TransformedDistribution
from numpyro.distributions.transforms import SigmoidTransform, biject_to
from numpyro.distributions.util import lazy_property, validate_sample

from numpyro_relax.distributions.util import (
    all_concrete,
    as_float_array,
    broadcast_batch,
    check_positive,
    clamp_probs,
    is_concrete,
    log1mexp,
    probs_to_logits,
    select_logits,
    straight_through,
    tril_mahalanobis,
    tril_matvec,
    validation_on,
    vmap_over_logits,
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
]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

# jit-compiled once per shape: eagerly, the many primitives inside these special functions would
# each be dispatched (and compiled) separately; inside a trace the jit is inlined.
log_ndtr = jax.jit(special.log_ndtr)
ndtr = jax.jit(special.ndtr)
ndtri = jax.jit(special.ndtri)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def uniform_open(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Uniforms clamped to ``(tiny, 1 - eps)``, so that ``log u`` and ``log1p(-u)`` are finite."""
    info = jnp.finfo(dtype)
    u = random.uniform(key, shape, dtype=dtype, minval=info.tiny, maxval=1.0)
    return jnp.clip(u, info.tiny, 1.0 - info.eps)


def logistic_noise(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Standard logistic noise ``log u - log1p(-u)``, one draw per element of ``shape``."""
    u = uniform_open(key, shape, dtype)
    return jnp.log(u) - jnp.log1p(-u)


@jax.jit
def logit(x: ArrayLike) -> jax.Array:
    """``log x - log1p(-x)`` with ``x`` clamped into ``(tiny, 1 - eps)``."""
    x = clamp_probs(x)
    return jnp.log(x) - jnp.log1p(-x)


def bernoulli_log_pmf(value: ArrayLike, logits: ArrayLike) -> jax.Array:
    """``value * log sigmoid(l) + (1 - value) * log sigmoid(-l)``: linear in ``value``.

    Computed as ``value * min(l, 0) - (1 - value) * max(l, 0) - log1p(exp(-|l|))`` (no
    cancellation on either side, one ``exp`` and one ``log1p``: about 4x cheaper than two
    log_sigmoid, forward and backward), with the derivatives ``value - sigmoid(l)`` and ``l`` as a
    custom JVP: autodiff of the ``min``/``max``/``abs`` form is wrong at ``l = 0`` exactly
    (NumPyro 0.22's ``BernoulliLogits.log_prob`` has gradient 0 there instead of -1/2).
    Infinite logits (certain outcomes, masked gates) give ``0`` and ``-inf``, as NumPyro's.
    """
    logits = jnp.asarray(logits)
    dtype = jnp.result_type(logits, float)
    return _bernoulli_log_pmf(jnp.asarray(value, dtype), logits.astype(dtype))


@jax.custom_jvp
def _bernoulli_log_pmf(value: jax.Array, logits: jax.Array) -> jax.Array:
    tail = jnp.log1p(jnp.exp(-jnp.abs(logits)))
    # an outcome of probability 0 (an infinite logit) that the value does not take adds 0, not
    # 0 * inf (the derivatives are the custom JVP's, untouched by the where)
    lower = jnp.where(value == 0, 0.0, value * jnp.minimum(logits, 0.0))
    upper = jnp.where(value == 1, 0.0, (1 - value) * jnp.maximum(logits, 0.0))
    return lower - upper - tail


@_bernoulli_log_pmf.defjvp
def _bernoulli_log_pmf_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    (value, logits), (d_value, d_logits) = primals, tangents
    out = _bernoulli_log_pmf(value, logits)
    big = jnp.finfo(logits.dtype).max  # an infinite logit times a zero tangent is 0, not NaN
    return out, (value - jax.nn.sigmoid(logits)) * d_logits + jnp.clip(logits, -big, big) * d_value


def log_sigmoid_both(x: ArrayLike) -> jax.Array:
    """``log sigmoid(x) + log sigmoid(-x) = -|x| - 2 log1p(exp(-|x|))``, the log-density of the
    standard logistic law, with one ``exp`` and one ``log1p`` instead of two softplus."""
    a = jnp.abs(x)
    return -a - 2.0 * jnp.log1p(jnp.exp(-a))


def bernoulli_entropy(logits: ArrayLike) -> jax.Array:
    """Entropy from logits; ``0 log 0 = 0`` at infinite logits (with a zero gradient there)."""
    p1, p0 = jax.nn.sigmoid(logits), jax.nn.sigmoid(-logits)
    log_p1 = jnp.where(p1 > 0, jax.nn.log_sigmoid(logits), 0.0)
    log_p0 = jnp.where(p0 > 0, jax.nn.log_sigmoid(-logits), 0.0)
    return -(p1 * log_p1 + p0 * log_p0)


def bernoulli_kl(logits_p: ArrayLike, logits_q: ArrayLike) -> jax.Array:
    r"""KL between Bernoulli laws from logits, :math:`\sum_{b} p_b(\log p_b - \log q_b)`.

    An outcome without mass under ``p`` (an infinite logit) adds 0 whatever ``q`` gives it: the
    ``where`` keeps ``0 * -inf`` and ``-inf - -inf`` out of the value and the gradient.
    """
    p1, p0 = jax.nn.sigmoid(logits_p), jax.nn.sigmoid(-logits_p)
    r1 = jax.nn.log_sigmoid(logits_p) - jax.nn.log_sigmoid(logits_q)
    r0 = jax.nn.log_sigmoid(-logits_p) - jax.nn.log_sigmoid(-logits_q)
    return p1 * jnp.where(p1 > 0, r1, 0.0) + p0 * jnp.where(p0 > 0, r0, 0.0)


@jax.jit
def normal_interval_mass(a: ArrayLike, b: ArrayLike) -> jax.Array:
    r""":math:`\Phi(b) - \Phi(a)` for :math:`a \le b`, computed in the tail where it is accurate."""
    return jnp.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))


def std_normal_pdf(x: ArrayLike) -> jax.Array:
    return jnp.exp(-0.5 * jnp.square(x) - _HALF_LOG_2PI)


@jax.jit
def _unit_atoms(value: ArrayLike, log_zero, log_one, log_inside) -> jax.Array:
    """Log-mass at 0 and 1, log density inside, ``-inf`` outside ``[0, 1]``."""
    value = jnp.asarray(value)
    out = jnp.where(value >= 1, log_one, log_inside)
    out = jnp.where(value <= 0, log_zero, out)
    return jnp.where((value < 0) | (value > 1), -jnp.inf, out)


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


# ------------------------------------------------------------------------------------------
# gates with atoms at 0 and 1
# ------------------------------------------------------------------------------------------
class GaussianRelaxedBernoulli(Distribution):
    r"""Stochastic gate (STG) of Yamada et al. (2020): a Gaussian clipped to :math:`[0, 1]`.

    .. math::
        z = \min(1, \max(0, \mu + \sigma\varepsilon)), \qquad \varepsilon \sim \mathcal{N}(0, 1).

    The law is mixed: atoms at 0 and 1 and the Normal density inside,

    .. math::
        P(z = 0) = \Phi(-\mu/\sigma), \qquad P(z = 1) = \Phi((\mu - 1)/\sigma), \qquad
        p(z) = \frac{1}{\sigma}\,\phi\!\left(\frac{z - \mu}{\sigma}\right),\ 0 < z < 1.

    ``log_prob`` returns the log-mass at exactly 0 or 1 and the log density inside (a density
    with respect to Lebesgue plus counting measure). The paper's regulariser is
    ``prob_nonzero`` :math:`= P(z > 0) = \Phi(\mu/\sigma)`, differentiable in both parameters;
    the pathwise gradient of a sample flows to :math:`\mu` and :math:`\sigma` inside
    :math:`(0, 1)`.

    :param loc: :math:`\mu`.
    :param scale: :math:`\sigma > 0` (the paper fixes it, e.g. 0.5).

    **References:**

    1. *Feature Selection using Stochastic Gates*, Y. Yamada, O. Lindenbaum, S. Negahban,
       Y. Kluger (ICML 2020).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    pytree_data_fields = ("loc", "scale")
    reparametrized_params = ["loc", "scale"]
    support = constraints.unit_interval

    def __init__(
        self, loc: ArrayLike, scale: ArrayLike, *, validate_args: bool | None = None
    ) -> None:
        name = type(self).__name__
        loc = as_float_array("loc", loc)
        scale = check_positive(name, "scale", scale, validate=validation_on(self, validate_args))
        batch_shape = broadcast_batch(name, loc=jnp.shape(loc), scale=jnp.shape(scale))
        self.loc = jnp.broadcast_to(loc, batch_shape)
        self.scale = jnp.broadcast_to(scale, batch_shape)
        super().__init__(batch_shape, (), validate_args=validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        shape = tuple(sample_shape) + self.batch_shape
        eps = random.normal(key, shape, dtype=jnp.result_type(self.loc))
        return jnp.clip(self.loc + self.scale * eps, 0.0, 1.0)

    @property
    def log_prob_zero(self) -> jax.Array:
        return log_ndtr(-self.loc / self.scale)

    @property
    def log_prob_one(self) -> jax.Array:
        return log_ndtr((self.loc - 1) / self.scale)

    @property
    def prob_zero(self) -> jax.Array:
        r""":math:`P(z = 0) = \Phi(-\mu/\sigma)`."""
        return ndtr(-self.loc / self.scale)

    @property
    def prob_one(self) -> jax.Array:
        r""":math:`P(z = 1) = \Phi((\mu - 1)/\sigma)`."""
        return ndtr((self.loc - 1) / self.scale)

    @property
    def prob_nonzero(self) -> jax.Array:
        r""":math:`P(z \ne 0) = \Phi(\mu/\sigma)`: the STG regulariser (expected number of open gates)."""
        return ndtr(self.loc / self.scale)

    @property
    def median(self) -> jax.Array:
        r"""The median :math:`\mathrm{clip}(\mu, 0, 1)` (clipping is monotone)."""
        return jnp.clip(self.loc, 0.0, 1.0)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        t = (value - self.loc) / self.scale
        inside = -0.5 * jnp.square(t) - _HALF_LOG_2PI - jnp.log(self.scale)
        return _unit_atoms(value, self.log_prob_zero, self.log_prob_one, inside)

    def _truncated_moments(self) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
        """``a, b, mass inside, phi(a), phi(b)`` of the Normal restricted to (0, 1)."""
        a = -self.loc / self.scale
        b = (1 - self.loc) / self.scale
        return a, b, normal_interval_mass(a, b), std_normal_pdf(a), std_normal_pdf(b)

    @property
    def mean(self) -> jax.Array:
        mu, s = self.loc, self.scale
        _, _, m0, pa, pb = self._truncated_moments()
        return mu * m0 + s * (pa - pb) + self.prob_one

    @property
    def variance(self) -> jax.Array:
        mu, s = self.loc, self.scale
        a, b, m0, pa, pb = self._truncated_moments()
        second = (
            (mu**2 + s**2) * m0 + 2 * mu * s * (pa - pb) + s**2 * (a * pa - b * pb)
        ) + self.prob_one
        return jnp.maximum(second - jnp.square(self.mean), 0.0)

    @property
    def mode(self) -> jax.Array:
        raise NotImplementedError("GaussianRelaxedBernoulli: a mixed law has no single mode.")

    def entropy(self) -> jax.Array:
        """Entropy with respect to Lebesgue plus counting measure (atoms and density)."""
        a, b, m0, pa, pb = self._truncated_moments()
        lz, lo = self.log_prob_zero, self.log_prob_one
        atoms = -(jnp.exp(lz) * lz + jnp.exp(lo) * lo)
        inside = (_HALF_LOG_2PI + jnp.log(self.scale)) * m0 + 0.5 * (m0 + a * pa - b * pb)
        return atoms + inside

    def cdf(self, value: ArrayLike) -> jax.Array:
        value = jnp.asarray(value)
        inside = ndtr((value - self.loc) / self.scale)
        return jnp.where(value < 0, 0.0, jnp.where(value >= 1, 1.0, inside))

    def icdf(self, q: ArrayLike) -> jax.Array:
        return jnp.clip(self.loc + self.scale * ndtri(q), 0.0, 1.0)


class HardConcrete(Distribution):
    r"""Hard concrete gate of Louizos, Welling and Kingma (2018).

    With :math:`\gamma` = ``limit_low`` :math:`< 0`, :math:`\zeta` = ``limit_high`` :math:`> 1`
    and temperature :math:`\beta`,

    .. math::
        s = \sigma\!\left(\frac{\log u - \log(1-u) + \log\alpha}{\beta}\right), \qquad
        z = \min(1, \max(0, s(\zeta - \gamma) + \gamma)), \qquad u \sim \mathcal{U}(0, 1).

    The law of :math:`z` has atoms at 0 and 1 and a density inside:

    .. math::
        P(z = 0) = \sigma\!\left(\beta\log\tfrac{-\gamma}{\zeta} - \log\alpha\right), \qquad
        P(z = 1) = \sigma\!\left(\log\alpha - \beta\log\tfrac{1-\gamma}{\zeta-1}\right),

    .. math::
        p(z) = \frac{1}{\zeta-\gamma}\,
            \frac{\beta\,\alpha\,s^{-\beta-1}(1-s)^{-\beta-1}}{(\alpha s^{-\beta} + (1-s)^{-\beta})^2},
        \quad s = \frac{z-\gamma}{\zeta-\gamma},\ 0 < z < 1,

    computed as :math:`\log\beta + \log\sigma(w) + \log\sigma(-w) - \log s - \log(1-s) -
    \log(\zeta-\gamma)` with :math:`w = \beta\,\mathrm{logit}(s) - \log\alpha`. ``log_prob``
    returns the log-mass at exactly 0 or 1 and the log density inside. ``prob_nonzero`` is the
    expected L0 penalty, ``median`` the true median of this law, ``test_gate`` the paper's
    test-time estimate.

    :param log_alpha: location :math:`\log\alpha`.
    :param temperature: :math:`\beta > 0` (default 2/3).
    :param limit_low: :math:`\gamma < 0` (default -0.1).
    :param limit_high: :math:`\zeta > 1` (default 1.1).

    **References:**

    1. *Learning Sparse Neural Networks through L0 Regularization*, C. Louizos, M. Welling,
       D. P. Kingma (ICLR 2018).
    """

    arg_constraints = {
        "log_alpha": constraints.real,
        "temperature": constraints.positive,
        "limit_low": constraints.less_than(0.0),
        "limit_high": constraints.greater_than(1.0),
    }
    pytree_data_fields = ("log_alpha", "temperature", "limit_low", "limit_high")
    reparametrized_params = ["log_alpha", "temperature", "limit_low", "limit_high"]
    support = constraints.unit_interval

    def __init__(
        self,
        log_alpha: ArrayLike,
        temperature: ArrayLike = 2.0 / 3.0,
        limit_low: ArrayLike = -0.1,
        limit_high: ArrayLike = 1.1,
        *,
        validate_args: bool | None = None,
    ) -> None:
        name = type(self).__name__
        log_alpha = as_float_array("log_alpha", log_alpha)
        validate = validation_on(self, validate_args)
        temperature = check_positive(name, "temperature", temperature, validate=validate)
        limit_low = as_float_array("limit_low", limit_low)
        limit_high = as_float_array("limit_high", limit_high)
        # always on: with limit_low >= 0 or limit_high <= 1 the atoms (and the law) degenerate
        if all_concrete(limit_low < 0) is False:
            raise ValueError(f"{name}: `limit_low` must be negative, got {limit_low}.")
        if all_concrete(limit_high > 1) is False:
            raise ValueError(f"{name}: `limit_high` must exceed 1, got {limit_high}.")
        batch_shape = broadcast_batch(
            name,
            log_alpha=jnp.shape(log_alpha),
            temperature=jnp.shape(temperature),
            limit_low=jnp.shape(limit_low),
            limit_high=jnp.shape(limit_high),
        )
        dtype = jnp.result_type(log_alpha, temperature, limit_low, limit_high)
        self.log_alpha = jnp.broadcast_to(log_alpha, batch_shape).astype(dtype)
        self.temperature = jnp.broadcast_to(temperature, batch_shape).astype(dtype)
        self.limit_low = jnp.broadcast_to(limit_low, batch_shape).astype(dtype)
        self.limit_high = jnp.broadcast_to(limit_high, batch_shape).astype(dtype)
        super().__init__(batch_shape, (), validate_args=validate_args)

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        shape = tuple(sample_shape) + self.batch_shape
        g = logistic_noise(key, shape, self.log_alpha.dtype)
        s = jax.nn.sigmoid((g + self.log_alpha) / self.temperature)
        return jnp.clip(s * (self.limit_high - self.limit_low) + self.limit_low, 0.0, 1.0)

    @property
    def _zero_logit(self) -> jax.Array:
        # P(z = 0) = sigmoid(zero_logit)
        return (
            self.temperature * (jnp.log(-self.limit_low) - jnp.log(self.limit_high))
            - self.log_alpha
        )

    @property
    def _one_logit(self) -> jax.Array:
        # P(z = 1) = sigmoid(one_logit)
        return self.log_alpha - self.temperature * (
            jnp.log1p(-self.limit_low) - jnp.log(self.limit_high - 1)
        )

    @property
    def prob_zero(self) -> jax.Array:
        r""":math:`P(z = 0)`."""
        return jax.nn.sigmoid(self._zero_logit)

    @property
    def prob_one(self) -> jax.Array:
        r""":math:`P(z = 1)`."""
        return jax.nn.sigmoid(self._one_logit)

    @property
    def prob_nonzero(self) -> jax.Array:
        r""":math:`P(z \ne 0) = \sigma(\log\alpha - \beta\log(-\gamma/\zeta))`, the L0 penalty."""
        return jax.nn.sigmoid(-self._zero_logit)

    @property
    def median(self) -> jax.Array:
        r"""The median :math:`\mathrm{clip}(\sigma(\log\alpha/\beta)(\zeta-\gamma)+\gamma, 0, 1)`."""
        return self.icdf(0.5)

    @property
    def test_gate(self) -> jax.Array:
        r"""The paper's test-time gate :math:`\mathrm{clip}(\sigma(\log\alpha)(\zeta-\gamma)+\gamma, 0, 1)`."""
        s = jax.nn.sigmoid(self.log_alpha)
        return jnp.clip(s * (self.limit_high - self.limit_low) + self.limit_low, 0.0, 1.0)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        width = self.limit_high - self.limit_low
        s = jnp.clip((value - self.limit_low) / width, 0.0, 1.0)
        y = logit(s)
        w = self.temperature * y - self.log_alpha
        inside = (
            jnp.log(self.temperature) + log_sigmoid_both(w) - log_sigmoid_both(y) - jnp.log(width)
        )
        return _unit_atoms(
            value,
            jax.nn.log_sigmoid(self._zero_logit),
            jax.nn.log_sigmoid(self._one_logit),
            inside,
        )

    def cdf(self, value: ArrayLike) -> jax.Array:
        value = jnp.asarray(value)
        s = jnp.clip((value - self.limit_low) / (self.limit_high - self.limit_low), 0.0, 1.0)
        inside = jax.nn.sigmoid(self.temperature * logit(s) - self.log_alpha)
        return jnp.where(value < 0, 0.0, jnp.where(value >= 1, 1.0, inside))

    def icdf(self, q: ArrayLike) -> jax.Array:
        s = jax.nn.sigmoid((self.log_alpha + logit(q)) / self.temperature)
        return jnp.clip(s * (self.limit_high - self.limit_low) + self.limit_low, 0.0, 1.0)

    @property
    def mean(self) -> jax.Array:
        raise NotImplementedError("HardConcrete: the mean has no closed form.")

    @property
    def variance(self) -> jax.Array:
        raise NotImplementedError("HardConcrete: the variance has no closed form.")

    @property
    def mode(self) -> jax.Array:
        raise NotImplementedError("HardConcrete: a mixed law has no single mode.")

    def entropy(self) -> jax.Array:
        raise NotImplementedError("HardConcrete: the entropy has no closed form.")


# ------------------------------------------------------------------------------------------
# correlated gates
# ------------------------------------------------------------------------------------------
@jax.jit
def _is_correlation_matrix(correlation: jax.Array) -> jax.Array:
    """Per matrix: symmetric, unit diagonal and positive definite (a finite Cholesky factor)."""
    tol = 1e3 * jnp.finfo(correlation.dtype).eps
    sym = jnp.all(
        jnp.isclose(correlation, jnp.swapaxes(correlation, -1, -2), atol=tol), axis=(-2, -1)
    )
    diag = jnp.all(jnp.abs(jnp.diagonal(correlation, axis1=-2, axis2=-1) - 1.0) <= tol, axis=-1)
    chol_diag = jnp.diagonal(jnp.linalg.cholesky(correlation), axis1=-2, axis2=-1)
    pd = jnp.all(jnp.isfinite(chol_diag) & (chol_diag > 0), axis=-1)
    return sym & diag & pd


class _CorrelationMatrix(type(constraints.corr_matrix)):
    """NumPyro's ``corr_matrix`` constraint, checked by one compiled call (Cholesky-based)."""

    def __call__(self, x: ArrayLike) -> jax.Array:
        return _is_correlation_matrix(jnp.asarray(x))


_correlation_matrix = _CorrelationMatrix()


@biject_to.register(_CorrelationMatrix)
def _(constraint: _CorrelationMatrix) -> Any:
    return biject_to(constraints.corr_matrix)


def _log_ndtr_pm(v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``log Phi(v)`` and ``log Phi(-v)`` from one ``log_ndtr`` (one copy of it to compile)."""
    both = special.log_ndtr(jnp.stack([v, -v]))
    return both[0], both[1]


@jax.jit
def _copula_normals(y: jax.Array, logits: jax.Array, temperature: jax.Array) -> jax.Array:
    """Inverse of the sampler: ``v = Phi^-1(u)`` with ``logit u = tau * y - logit pi``.

    Computed in the lower tail, ``v = -sign(w) Phi^-1(sigmoid(-|w|))``, where it is accurate.
    """
    w = temperature[..., None] * y - logits
    tail = special.ndtri(clamp_probs(jax.nn.sigmoid(-jnp.abs(w))))
    return jnp.where(w < 0, tail, -tail)


def _copula_log_density(
    v: jax.Array,
    y: jax.Array,
    log_u: jax.Array,
    log_1mu: jax.Array,
    correlation: jax.Array,
    temperature: jax.Array,
) -> jax.Array:
    """Gaussian copula log density at ``v`` plus the per-gate log Jacobians (gate logits ``y``)."""
    scale_tril = jnp.linalg.cholesky(correlation)
    half_log_det = jnp.sum(jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)), axis=-1)
    # the factor is not broadcast to the sample: draws share one solve per distinct factor
    copula = -0.5 * (tril_mahalanobis(scale_tril, v) - jnp.sum(v**2, -1)) - half_log_det
    jac = jnp.log(temperature[..., None]) + log_u + log_1mu - log_sigmoid_both(y)
    return copula + jnp.sum(jac, axis=-1)


@partial(jax.jit, static_argnames="shape")
def _copula_sample(
    key: jax.Array,
    probs: jax.Array,
    correlation: jax.Array,
    temperature: jax.Array,
    shape: tuple[int, ...],
) -> tuple[jax.Array, jax.Array]:
    """Gates and the Gaussian vector behind them, in one compiled call.

    The gates are clamped into ``(tiny, 1 - eps)`` (NumPyro's ``RelaxedBernoulli`` convention):
    at low temperature the sigmoid rounds to exactly 0 or 1, where a binary Concrete density
    scored from the value alone (a ``RelaxedBernoulli`` prior under ``replay``) is NaN.
    """
    eps = random.normal(key, shape, dtype=probs.dtype)
    v = tril_matvec(jnp.linalg.cholesky(correlation), eps)
    log_u, log_1mu = _log_ndtr_pm(v)
    logits = probs_to_logits(probs, is_binary=True)
    return clamp_probs(jax.nn.sigmoid((logits + log_u - log_1mu) / temperature[..., None])), v


@jax.jit
def _copula_log_prob(
    value: jax.Array,
    v: jax.Array | None,
    probs: jax.Array,
    correlation: jax.Array,
    temperature: jax.Array,
) -> jax.Array:
    """Log density at ``value``, from the Gaussian vector ``v`` when the sampler gave it."""
    logits = probs_to_logits(probs, is_binary=True)
    if v is None:
        y = logit(value)
        v = _copula_normals(y, logits, temperature)
        log_u, log_1mu = _log_ndtr_pm(v)
    else:
        log_u, log_1mu = _log_ndtr_pm(v)
        y = (logits + log_u - log_1mu) / temperature[..., None]
    return _copula_log_density(v, y, log_u, log_1mu, correlation, temperature)


class CorrelatedRelaxedBernoulli(Distribution):
    r"""Correlated relaxed Bernoulli gates through a Gaussian copula (Lee, Imrie et al., 2022).

    For a correlation matrix :math:`R` (``D x D``), selection probabilities :math:`\pi` and
    temperature :math:`\tau`,

    .. math::
        v \sim \mathcal{N}(0, R), \quad u_k = \Phi(v_k), \quad
        m_k = \sigma\!\left(\frac{\mathrm{logit}\,\pi_k + \log u_k - \log(1 - u_k)}{\tau}\right),

    with :math:`\log u_k - \log(1-u_k) = \log\Phi(v_k) - \log\Phi(-v_k)` computed in log space.
    Each :math:`m_k` is marginally a binary Concrete (``RelaxedBernoulli``), and the gates are
    coupled by :math:`R`. Inverting the sampler (change of variables) gives the exact density

    .. math::
        \log p(m) = -\tfrac12 v^\top (R^{-1} - I) v - \tfrac12\log\det R
          + \sum_k \big[\log\tau + \log u_k + \log(1-u_k) - \log m_k - \log(1 - m_k)\big],

    the Gaussian copula density times the per-coordinate binary Concrete densities, with
    :math:`v_k = \Phi^{-1}(u_k)`, :math:`\mathrm{logit}\,u_k = \tau\,\mathrm{logit}\,m_k -
    \mathrm{logit}\,\pi_k`. Samples return :math:`v` as an intermediate, so ``log_prob`` at a
    sample drawn inside a NumPyro trace stays exact where :math:`m` rounds to 0 or 1.

    :param probs: selection probabilities :math:`\pi`, shape ``batch_shape + (D,)``.
    :param correlation: correlation matrix :math:`R`, shape ``batch_shape + (D, D)``
        (symmetric, unit diagonal, positive definite).
    :param temperature: positive temperature :math:`\tau`, broadcastable to ``batch_shape``.

    **References:**

    1. *Self-Supervision Enhanced Feature Selection with Correlated Gates*, C. Lee, F. Imrie,
       M. van der Schaar (ICLR 2022).
    """

    arg_constraints = {
        "probs": constraints.independent(constraints.unit_interval, 1),
        "correlation": _correlation_matrix,
        "temperature": constraints.positive,
    }
    pytree_data_fields = ("probs", "correlation", "temperature")
    reparametrized_params = ["probs", "correlation", "temperature"]
    support = constraints.independent(constraints.unit_interval, 1)

    def __init__(
        self,
        probs: ArrayLike,
        correlation: ArrayLike,
        temperature: ArrayLike,
        *,
        validate_args: bool | None = None,
    ) -> None:
        name = type(self).__name__
        probs = as_float_array("probs", probs)
        correlation = as_float_array("correlation", correlation)
        validate = validation_on(self, validate_args)
        temperature = check_positive(name, "temperature", temperature, validate=validate)
        if probs.ndim < 1 or probs.shape[-1] == 0:
            raise ValueError(
                f"{name}: `probs` must have a last axis of at least one gate, got shape "
                f"{probs.shape}."
            )
        dim = probs.shape[-1]
        if correlation.ndim < 2 or correlation.shape[-2:] != (dim, dim):
            raise ValueError(
                f"{name}: `correlation` must have shape batch_shape + ({dim}, {dim}) to match "
                f"`probs` of shape {probs.shape}, got {correlation.shape}."
            )
        if not validate and is_concrete(correlation):
            # with validation on, NumPyro's corr_matrix check rejects it (naming `correlation`)
            self._check_correlation(name, correlation)
        batch_shape = broadcast_batch(
            name,
            probs=probs.shape[:-1],
            correlation=correlation.shape[:-2],
            temperature=jnp.shape(temperature),
        )
        self.probs = jnp.broadcast_to(probs, batch_shape + (dim,))
        # not broadcast to the batch: one shared D x D matrix means one Cholesky factorisation
        # and one triangular solve with every sample as a right-hand side
        self.correlation = correlation
        self.temperature = jnp.broadcast_to(temperature, batch_shape)
        super().__init__(batch_shape, (dim,), validate_args=validate_args)

    @staticmethod
    def _check_correlation(name: str, correlation: jax.Array) -> None:
        with jax.ensure_compile_time_eval():
            valid = bool(jnp.all(_is_correlation_matrix(correlation)))
        if not valid:
            raise ValueError(
                f"{name}: `correlation` must be a correlation matrix (symmetric, unit "
                "diagonal, positive definite)."
            )

    @lazy_property
    def logits(self) -> jax.Array:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def scale_tril(self) -> jax.Array:
        """Cholesky factor of ``correlation``."""
        return jnp.linalg.cholesky(self.correlation)

    @property
    def marginals(self) -> RelaxedBernoulliLogits:
        """The per-gate laws: binary Concretes, batch shape ``batch_shape + (D,)``."""
        return RelaxedBernoulliLogits(self.temperature[..., None], self.logits)

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        x, v = _copula_sample(key, self.probs, self.correlation, self.temperature, shape)
        return x, [v]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self.sample_with_intermediates(key, sample_shape)[0]

    def normals(self, value: ArrayLike) -> jax.Array:
        r"""The Gaussian vector :math:`v` behind gates ``value`` (the inverse of the sampler)."""
        return _copula_normals(logit(value), self.logits, self.temperature)

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        v = intermediates[0] if intermediates else None
        return _copula_log_prob(value, v, self.probs, self.correlation, self.temperature)

    @property
    def mean(self) -> jax.Array:
        raise NotImplementedError("CorrelatedRelaxedBernoulli: the mean has no closed form.")

    @property
    def variance(self) -> jax.Array:
        raise NotImplementedError("CorrelatedRelaxedBernoulli: the variance has no closed form.")


# ------------------------------------------------------------------------------------------
# logit-normal
# ------------------------------------------------------------------------------------------
class LogitNormal(TransformedDistribution):
    r"""Logit-normal distribution: the sigmoid of a Normal variable.

    .. math::
        x = \sigma(y), \quad y \sim \mathcal{N}(\mu, s^2), \qquad
        p(x) = \frac{1}{s\,x(1-x)}\,\phi\!\left(\frac{\mathrm{logit}(x) - \mu}{s}\right).

    A ``TransformedDistribution`` (Normal + ``SigmoidTransform``): samples carry the Normal
    draw as an intermediate, so ``log_prob`` inside a NumPyro trace is exact where :math:`x`
    rounds to 0 or 1. The median is :math:`\sigma(\mu)`; the mean, variance, mode and entropy
    have no closed form.

    :param loc: :math:`\mu`.
    :param scale: :math:`s > 0`.

    **References:**

    1. *Logistic-normal distributions: some properties and uses*, J. Atchison, S. M. Shen
       (Biometrika 67(2), 1980).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    pytree_data_fields = ("loc", "scale")
    reparametrized_params = ["loc", "scale"]
    support = constraints.unit_interval

    def __init__(
        self, loc: ArrayLike = 0.0, scale: ArrayLike = 1.0, *, validate_args: bool | None = None
    ) -> None:
        name = type(self).__name__
        loc = as_float_array("loc", loc)
        scale = check_positive(name, "scale", scale, validate=validation_on(self, validate_args))
        batch_shape = broadcast_batch(name, loc=jnp.shape(loc), scale=jnp.shape(scale))
        self.loc = jnp.broadcast_to(loc, batch_shape)
        self.scale = jnp.broadcast_to(scale, batch_shape)
        super().__init__(
            Normal(self.loc, self.scale), SigmoidTransform(), validate_args=validate_args
        )

    @property
    def median(self) -> jax.Array:
        return jax.nn.sigmoid(self.loc)

    def cdf(self, value: ArrayLike) -> jax.Array:
        return ndtr((logit(value) - self.loc) / self.scale)

    def icdf(self, q: ArrayLike) -> jax.Array:
        return jax.nn.sigmoid(self.loc + self.scale * ndtri(q))

    @property
    def mean(self) -> jax.Array:
        raise NotImplementedError("LogitNormal: the mean has no closed form.")

    @property
    def variance(self) -> jax.Array:
        raise NotImplementedError("LogitNormal: the variance has no closed form.")

    @property
    def mode(self) -> jax.Array:
        raise NotImplementedError("LogitNormal: the mode has no closed form.")

    def entropy(self) -> jax.Array:
        raise NotImplementedError("LogitNormal: the entropy has no closed form.")


# ------------------------------------------------------------------------------------------
# vmap_over
# ------------------------------------------------------------------------------------------
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


@vmap_over.register
def _(dist: GaussianRelaxedBernoulli, loc=None, scale=None):
    return _default_vmap_over(dist, loc=loc, scale=scale)


@vmap_over.register
def _(dist: HardConcrete, log_alpha=None, temperature=None, limit_low=None, limit_high=None):
    return _default_vmap_over(
        dist,
        log_alpha=log_alpha,
        temperature=temperature,
        limit_low=limit_low,
        limit_high=limit_high,
    )


@vmap_over.register
def _(dist: CorrelatedRelaxedBernoulli, probs=None, correlation=None, temperature=None):
    return _default_vmap_over(dist, probs=probs, correlation=correlation, temperature=temperature)


@vmap_over.register
def _(dist: LogitNormal, loc=None, scale=None):
    dist_axes = _default_vmap_over(dist, loc=loc, scale=scale)
    dist_axes.transforms = None
    dist_axes.base_dist = vmap_over(dist.base_dist, loc=loc, scale=scale)
    return dist_axes
