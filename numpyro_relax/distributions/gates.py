r"""Stochastic gates with atoms at 0 and 1: the STG Gaussian gate and the hard concrete gate.

Their laws are mixed: ``log_prob`` is the log-mass of the atom at exactly 0 or 1 and the log
density inside, a density with respect to Lebesgue plus counting measure. The atom masses
(``prob_zero``, ``prob_one``, ``prob_nonzero``: the L0 penalty) and the median are properties.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import random
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import _default_vmap_over, vmap_over
from numpyro.distributions.distribution import Distribution
from numpyro.distributions.util import validate_sample

from numpyro_relax.distributions.util import (
    HALF_LOG_2PI,
    all_concrete,
    as_float_array,
    broadcast_batch,
    check_positive,
    jit_log_ndtr,
    jit_ndtr,
    jit_ndtri,
    log_sigmoid_both,
    logistic_noise,
    logit,
    normal_interval_mass,
    std_normal_pdf,
    validation_on,
)

__all__ = ["GaussianRelaxedBernoulli", "HardConcrete"]


@jax.jit
def _unit_atoms(value: ArrayLike, log_zero, log_one, log_inside) -> jax.Array:
    """Log-mass at 0 and 1, log density inside, ``-inf`` outside ``[0, 1]``."""
    value = jnp.asarray(value)
    out = jnp.where(value >= 1, log_one, log_inside)
    out = jnp.where(value <= 0, log_zero, out)
    return jnp.where((value < 0) | (value > 1), -jnp.inf, out)


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
        return jit_log_ndtr(-self.loc / self.scale)

    @property
    def log_prob_one(self) -> jax.Array:
        return jit_log_ndtr((self.loc - 1) / self.scale)

    @property
    def prob_zero(self) -> jax.Array:
        r""":math:`P(z = 0) = \Phi(-\mu/\sigma)`."""
        return jit_ndtr(-self.loc / self.scale)

    @property
    def prob_one(self) -> jax.Array:
        r""":math:`P(z = 1) = \Phi((\mu - 1)/\sigma)`."""
        return jit_ndtr((self.loc - 1) / self.scale)

    @property
    def prob_nonzero(self) -> jax.Array:
        r""":math:`P(z \ne 0) = \Phi(\mu/\sigma)`: the STG regulariser (expected number of open gates)."""
        return jit_ndtr(self.loc / self.scale)

    @property
    def median(self) -> jax.Array:
        r"""The median :math:`\mathrm{clip}(\mu, 0, 1)` (clipping is monotone)."""
        return jnp.clip(self.loc, 0.0, 1.0)

    @validate_sample
    def log_prob(self, value: ArrayLike) -> jax.Array:
        t = (value - self.loc) / self.scale
        inside = -0.5 * jnp.square(t) - HALF_LOG_2PI - jnp.log(self.scale)
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
        inside = (HALF_LOG_2PI + jnp.log(self.scale)) * m0 + 0.5 * (m0 + a * pa - b * pb)
        return atoms + inside

    def cdf(self, value: ArrayLike) -> jax.Array:
        value = jnp.asarray(value)
        inside = jit_ndtr((value - self.loc) / self.scale)
        return jnp.where(value < 0, 0.0, jnp.where(value >= 1, 1.0, inside))

    def icdf(self, q: ArrayLike) -> jax.Array:
        return jnp.clip(self.loc + self.scale * jit_ndtri(q), 0.0, 1.0)


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
        # with limit_low >= 0 or limit_high <= 1 the atoms (and the law) degenerate; checked
        # only with validation on, as NumPyro checks its arg_constraints
        if validate and all_concrete(limit_low < 0) is False:
            raise ValueError(f"{name}: `limit_low` must be negative, got {limit_low}.")
        if validate and all_concrete(limit_high > 1) is False:
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
