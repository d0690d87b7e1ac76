"""Relaxations and estimators for the discrete-latent VAE example (``examples/vae.py``).

Each :class:`Method` says, for one way of training a discrete latent,

* which distribution the guide samples at site ``"z"`` (:meth:`Method.posterior`) and which
  prior the model puts there (:meth:`Method.prior`), so that the model and guide are ordinary
  NumPyro programs;
* which ELBO fits them (:attr:`Method.objective`): ``"mc"`` is ``Trace_ELBO`` (the KL term is
  estimated by :math:`\\log q(z) - \\log p(z)` at the relaxed sample), ``"analytic"`` is
  ``TraceMeanField_ELBO`` (the exact KL registered with ``kl_divergence``), ``"loo"`` and
  ``"vargrad"`` are the score-function ELBOs of :mod:`numpyro_relax.infer` and ``"disarm"`` its
  antithetic ``DisARM_ELBO`` (binary latent only; ``--particles`` counts its pairs);
* how the site value is fed to the decoder (:meth:`Method.decode`);
* the *discrete* law of the hard value behind the relaxation (:meth:`Method.discrete_log_probs`,
  argmax of a relaxed one-hot vector, or a relaxed bit rounded at 1/2) and of the same hard value
  under the prior (:meth:`Method.prior_log_probs`). The example evaluates every method on the
  same discrete model with them: prior :math:`p(z)`, decoder at a one-hot/bit :math:`z`, guide
  :math:`q(z \\mid x)`.

Methods appear in :func:`available_methods` only when the library classes they need import,
so a family that has not landed yet is simply not offered.

The module also defines small helpers that the library does not (yet) provide:

* :class:`JangRelaxedOneHot`, :class:`JangRelaxedBernoulli` — Gumbel-softmax / binary Concrete
  whose KL to the discrete prior is the discrete KL (Jang et al.'s objective, ``--kl
  categorical``);
* :class:`SmoothBits` — :class:`~numpyro_relax.distributions.bernoulli.StochasticTimesSmooth`
  with a registered KL of its bits :math:`b \\sim \\mathrm{Bernoulli}(\\sqrt p)` to a Bernoulli
  prior (the value :math:`b\\sqrt p` is what the decoder sees);
* :class:`HardConcreteGate` — :class:`~numpyro_relax.distributions.bernoulli.HardConcrete` with a
  registered KL between two gates of the same temperature and stretch: the two atoms in closed
  form and the interior by Gauss-Legendre quadrature in logit space (deterministic and
  differentiable; a pathwise Monte Carlo KL would be biased because :math:`\\log q - \\log p`
  jumps where the sample hits an atom);
* :class:`CopulaGateLogits` — the logits :math:`y = \\mathrm{logit}\\, m` of
  :class:`~numpyro_relax.distributions.bernoulli.CorrelatedRelaxedBernoulli` gates, with the exact
  density in logit space from the library's ``log_prob(m, intermediates=[v])``, so that the
  Monte Carlo KL to an independent binary-Concrete prior stays exact where :math:`m` rounds to
  0 or 1 in float32.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import log_ndtr, logsumexp, ndtri
from numpyro.distributions import constraints
from numpyro.distributions.kl import kl_divergence

import numpyro_relax.distributions as nrd
from numpyro_relax.distributions.bernoulli import bernoulli_kl, log_sigmoid_both
from numpyro_relax.distributions.util import log1mexp

try:  # binary family
    from numpyro_relax.distributions import bernoulli as _bern
except ImportError:  # pragma: no cover - depends on which families have landed
    _bern = None

try:  # simplex family (IGR, logistic-normal) and its exact KLs
    from numpyro_relax.distributions import kl_simplex as _kl_simplex  # noqa: F401
    from numpyro_relax.distributions import simplex as _simplex
except ImportError:  # pragma: no cover
    _simplex = None

try:  # binary-family KLs (straight-through vs Bernoulli, STG vs STG)
    from numpyro_relax.distributions import kl_bernoulli as _kl_bernoulli  # noqa: F401
except ImportError:  # pragma: no cover
    pass

try:  # score-function ELBOs and the mean-field ELBO for straight-through guides
    from numpyro_relax.infer import StraightThrough_ELBO, TraceLOO_ELBO, VarGrad_ELBO
except ImportError:  # pragma: no cover
    StraightThrough_ELBO = TraceLOO_ELBO = VarGrad_ELBO = None

try:  # DisARM for Bernoulli guides
    from numpyro_relax.infer import DisARM_ELBO
except ImportError:  # pragma: no cover
    DisARM_ELBO = None

__all__ = [
    "BINARY",
    "CATEGORICAL",
    "CopulaGateLogits",
    "HardConcreteGate",
    "JangRelaxedBernoulli",
    "JangRelaxedOneHot",
    "Method",
    "SmoothBits",
    "argmax_log_probs",
    "available_methods",
    "get_method",
    "hard_concrete_kl",
    "make_elbo",
    "method_table",
    "mlp",
]

CATEGORICAL = "categorical"
BINARY = "binary"

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(32)
# Gauss-Legendre on (0, 1): nodes v_i and weights summing to one.
# numpy, not jax, arrays: importing this module must not start a JAX backend (the example
# picks the platform after parsing its arguments).
_UNIT_NODES = (0.5 * (_GL_NODES + 1.0)).astype(np.float32)
_UNIT_LOG_WEIGHTS = np.log(0.5 * _GL_WEIGHTS).astype(np.float32)


# --------------------------------------------------------------------------------------------
# A plain-JAX MLP in the (init_fn, apply_fn) form that ``numpyro.module`` registers
# --------------------------------------------------------------------------------------------


def mlp(sizes: tuple[int, ...]) -> tuple[Callable, Callable]:
    """A ReLU multilayer perceptron as an ``(init_fn, apply_fn)`` pair for ``numpyro.module``.

    Weights and biases start from :math:`\\mathcal U(-1/\\sqrt{n_{in}}, 1/\\sqrt{n_{in}})`, the
    default of ``torch.nn.Linear`` (so the PyTorch benchmark starts from the same law); the last
    layer is linear.

    :param sizes: output sizes of the layers, e.g. ``(256, 128, 20)``.
    :return: ``init_fn(key, input_shape) -> (output_shape, params)`` and
        ``apply_fn(params, x) -> y``.
    """

    def init_fn(key: jax.Array, input_shape: tuple[int, ...]) -> tuple[tuple[int, ...], list]:
        params = []
        fan_in = input_shape[-1]
        for size, k in zip(sizes, jax.random.split(key, len(sizes)), strict=True):
            kw, kb = jax.random.split(k)
            bound = 1.0 / math.sqrt(fan_in)
            w = jax.random.uniform(kw, (fan_in, size), minval=-bound, maxval=bound)
            b = jax.random.uniform(kb, (size,), minval=-bound, maxval=bound)
            params.append((w, b))
            fan_in = size
        return tuple(input_shape[:-1]) + (sizes[-1],), params

    def apply_fn(params: list, x: jax.Array) -> jax.Array:
        for i, (w, b) in enumerate(params):
            x = x @ w + b
            if i < len(params) - 1:
                x = jax.nn.relu(x)
        return x

    return init_fn, apply_fn


# --------------------------------------------------------------------------------------------
# Discrete laws behind the Gaussian-based relaxations
# --------------------------------------------------------------------------------------------


def argmax_log_probs(loc: jax.Array, scale: jax.Array, *, residual: bool = False) -> jax.Array:
    """Log-probabilities of :math:`\\arg\\max_k z_k` for independent :math:`z_k \\sim N(\\mu_k, \\sigma_k^2)`.

    .. math::
        P(\\arg\\max = k) = \\Phi\\big(\\tfrac{\\mu_k - c}{\\sigma_k}\\big)\\,
            \\mathbb E\\Big[\\prod_{j \\ne k} \\Phi\\big(\\tfrac{t - \\mu_j}{\\sigma_j}\\big)\\Big],
        \\quad t \\sim N(\\mu_k, \\sigma_k^2) \\text{ truncated to } t > c,

    with 32-point Gauss-Legendre quadrature in the truncated CDF's coordinate. With
    ``residual=True`` there is one more coordinate fixed at :math:`c = 0` (IGR's softmax++
    residual with :math:`\\delta = 1`), appended last with probability
    :math:`\\prod_j \\Phi(-\\mu_j/\\sigma_j)`; otherwise :math:`c = -\\infty`. The result is
    normalised; the example uses it as the discrete proposal it samples *and* scores, so the
    importance-weighted bound stays valid whatever the quadrature error.

    :param loc: :math:`\\mu`, shape ``(..., K')``.
    :param scale: :math:`\\sigma > 0`, same shape.
    :param residual: append the fixed coordinate at 0.
    :return: log-probabilities, shape ``(..., K')`` or ``(..., K' + 1)``.
    """
    loc, scale = jnp.broadcast_arrays(loc, scale)
    if residual:
        log_mass = log_ndtr(loc / scale)  # P(z_k > 0)
    else:
        log_mass = jnp.zeros_like(loc)
    # t = mu - sigma * Phi^{-1}(mass * (1 - v)): the upper tail written without cancellation.
    u = jnp.exp(log_mass)[..., None] * (1.0 - _UNIT_NODES)
    t = loc[..., None] - scale[..., None] * ndtri(jnp.clip(u, 1e-30, 1.0 - 1e-7))  # (..., K', n)
    z = (t[..., :, None, :] - loc[..., None, :, None]) / scale[..., None, :, None]
    k = loc.shape[-1]
    off_diagonal = ~jnp.eye(k, dtype=bool)[:, :, None]
    log_cdf = jnp.sum(jnp.where(off_diagonal, log_ndtr(z), 0.0), axis=-2)  # (..., K', n)
    log_p = log_mass + logsumexp(log_cdf + _UNIT_LOG_WEIGHTS, axis=-1)
    if residual:
        log_res = jnp.sum(log_ndtr(-loc / scale), axis=-1, keepdims=True)
        log_p = jnp.concatenate([log_p, log_res], axis=-1)
    return jax.nn.log_softmax(log_p, axis=-1)


def _bits(logits: jax.Array) -> jax.Array:
    """Binary log-odds -> log-probabilities of the two categories ``(0, 1)``."""
    return jnp.stack([jax.nn.log_sigmoid(-logits), jax.nn.log_sigmoid(logits)], axis=-1)


# --------------------------------------------------------------------------------------------
# Small distributions (private to the example) carrying KL registrations
# --------------------------------------------------------------------------------------------


class JangRelaxedOneHot(nrd.RelaxedOneHotCategorical):
    r"""Gumbel-softmax whose KL to a ``OneHotCategorical`` is the categorical KL (Jang et al.).

    The sample and density are :class:`RelaxedOneHotCategorical`'s. The registered KL is that of
    the categorical law :math:`\mathrm{Cat}(\mathrm{softmax}(\ell))` behind the relaxation:
    the objective of Jang et al.'s code (relaxed sample to the decoder, discrete KL), which is
    not a bound on the relaxed model nor on the discrete one. ``--kl categorical`` uses it.
    """


@kl_divergence.register(JangRelaxedOneHot, nrd.OneHotCategorical)
def _kl_jang_onehot(p: JangRelaxedOneHot, q: Any) -> jax.Array:
    lp = jax.nn.log_softmax(p.logits, axis=-1)
    lq = jax.nn.log_softmax(q.logits, axis=-1)
    return jnp.sum(jnp.exp(lp) * (lp - lq), axis=-1)


class JangRelaxedBernoulli(dist.RelaxedBernoulliLogits):
    """Binary Concrete whose KL to a ``Bernoulli`` is the Bernoulli KL (see :class:`JangRelaxedOneHot`)."""


@kl_divergence.register(JangRelaxedBernoulli, dist.BernoulliProbs)
def _kl_jang_bernoulli(p: JangRelaxedBernoulli, q: dist.BernoulliProbs) -> jax.Array:
    return bernoulli_kl(p.logits, jnp.log(q.probs) - jnp.log1p(-q.probs))


if _bern is not None:

    class SmoothBits(_bern.StochasticTimesSmooth):
        """:class:`StochasticTimesSmooth` whose latent is its bit :math:`b \\sim \\mathrm{Bern}(\\sqrt p)`.

        Same sampler and ``log_prob``; it exists so that a KL of the *bits* to a Bernoulli prior
        can be registered without changing how the library class dispatches.
        """

        @property
        def bit_logits(self) -> jax.Array:
            """Log-odds of the bit, :math:`\\log\\sqrt p - \\log(1 - \\sqrt p)`."""
            log_q = self.log_gate_prob
            return log_q - log1mexp(log_q)

    @kl_divergence.register(SmoothBits, dist.BernoulliProbs)
    def _kl_smooth_bits_bernoulli(p: SmoothBits, q: dist.BernoulliProbs) -> jax.Array:
        return bernoulli_kl(p.bit_logits, jnp.log(q.probs) - jnp.log1p(-q.probs))

    class HardConcreteGate(_bern.HardConcrete):
        """:class:`HardConcrete` with a registered KL between two gates (see :func:`hard_concrete_kl`)."""

    def hard_concrete_kl(p: Any, q: Any) -> jax.Array:
        """KL between two hard-concrete gates with the same temperature and stretch limits.

        With :math:`y = \\mathrm{logit}\\, s` (the stretched Concrete before clipping; its law is
        logistic with location :math:`\\log\\alpha/\\beta` and scale :math:`1/\\beta`), the gate is
        0 for :math:`y < y_0`, 1 for :math:`y > y_1` and a bijection of :math:`y` in between, so

        .. math::
            \\mathrm{KL} = P_0 \\log\\frac{P_0}{Q_0} + P_1 \\log\\frac{P_1}{Q_1}
                + \\int_{y_0}^{y_1} p(y) \\log\\frac{p(y)}{q(y)}\\,dy

        (the Jacobian of :math:`y \\mapsto z` cancels), the integral by 32-point Gauss-Legendre.
        """
        beta = p.temperature
        y0 = jnp.log(-p.limit_low) - jnp.log(p.limit_high)
        y1 = jnp.log1p(-p.limit_low) - jnp.log(p.limit_high - 1.0)

        def atoms(d: Any) -> tuple[jax.Array, jax.Array]:
            return (
                jax.nn.log_sigmoid(beta * y0 - d.log_alpha),
                jax.nn.log_sigmoid(d.log_alpha - beta * y1),
            )

        def log_density(d: Any, y: jax.Array) -> jax.Array:
            w = beta[..., None] * y - d.log_alpha[..., None]
            return jnp.log(beta)[..., None] + log_sigmoid_both(w)

        (p0, p1), (q0, q1) = atoms(p), atoms(q)
        half = 0.5 * (y1 - y0)
        y = y0[..., None] + 2.0 * half[..., None] * _UNIT_NODES
        lp, lq = log_density(p, y), log_density(q, y)
        inside = jnp.sum(jnp.exp(_UNIT_LOG_WEIGHTS + lp) * (lp - lq), axis=-1) * 2.0 * half
        return jnp.exp(p0) * (p0 - q0) + jnp.exp(p1) * (p1 - q1) + inside

    kl_divergence.register(HardConcreteGate, HardConcreteGate)(hard_concrete_kl)

    class CopulaGateLogits(dist.Distribution):
        """Logits :math:`y = \\mathrm{logit}\\, m` of correlated relaxed Bernoulli gates.

        :math:`m \\sim` :class:`CorrelatedRelaxedBernoulli` (probabilities
        :math:`\\sigma(\\ell)`, correlation :math:`LL^\\top`, temperature :math:`\\tau`); the
        density of :math:`y` is the library's density of :math:`m` (evaluated with the copula
        normals :math:`v` as intermediates) plus :math:`\\sum_k \\log m_k(1 - m_k)`, computed as
        ``log_sigmoid(y) + log_sigmoid(-y)`` from :math:`y = (\\ell + \\log\\Phi(v) -
        \\log\\Phi(-v))/\\tau`, which never rounds.

        :param logits: :math:`\\ell`, shape ``batch_shape + (D,)``.
        :param scale_tril: Cholesky factor :math:`L` of the correlation, shape ``(D, D)``.
        :param temperature: :math:`\\tau > 0`.
        """

        arg_constraints = {
            "logits": constraints.real_vector,
            "scale_tril": constraints.corr_cholesky,
            "temperature": constraints.positive,
        }
        pytree_data_fields = ("logits", "scale_tril", "temperature")
        reparametrized_params = ["logits", "scale_tril", "temperature"]
        support = constraints.real_vector

        def __init__(
            self,
            logits: jax.Array,
            scale_tril: jax.Array,
            temperature: jax.Array,
            *,
            validate_args: bool | None = None,
        ) -> None:
            self.logits = jnp.asarray(logits)
            self.scale_tril = jnp.asarray(scale_tril)
            self.temperature = jnp.broadcast_to(temperature, self.logits.shape[:-1])
            super().__init__(
                self.logits.shape[:-1], self.logits.shape[-1:], validate_args=validate_args
            )

        @property
        def gates(self) -> Any:
            """The :class:`CorrelatedRelaxedBernoulli` law of :math:`m = \\sigma(y)`."""
            correlation = self.scale_tril @ self.scale_tril.T
            return _bern.CorrelatedRelaxedBernoulli(
                jax.nn.sigmoid(self.logits), correlation, self.temperature
            )

        def _gate_logits(self, v: jax.Array) -> jax.Array:
            return (self.logits + log_ndtr(v) - log_ndtr(-v)) / self.temperature[..., None]

        def sample_with_intermediates(
            self, key: jax.Array, sample_shape: tuple[int, ...] = ()
        ) -> tuple[jax.Array, list]:
            _, (v,) = self.gates.sample_with_intermediates(key, sample_shape)
            return self._gate_logits(v), [v]

        def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
            return self.sample_with_intermediates(key, sample_shape)[0]

        def log_prob(self, value: jax.Array, intermediates: list | None = None) -> jax.Array:
            if intermediates:
                (v,) = intermediates
                y = self._gate_logits(v)
                lp = self.gates.log_prob(jax.nn.sigmoid(y), intermediates=[v])
            else:  # exact only while sigmoid(value) does not round to 0 or 1
                y = value
                lp = self.gates.log_prob(jax.nn.sigmoid(y))
            return lp + jnp.sum(log_sigmoid_both(y), axis=-1)

else:  # pragma: no cover
    SmoothBits = HardConcreteGate = CopulaGateLogits = None


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Method:
    """One way to train the discrete latent: a guide distribution, a prior and an objective.

    Subclasses override the hooks; ``num_latents`` is ``N`` (categorical variables or bits) and
    ``num_categories`` is ``K`` (2 for bits in the discrete-law hooks).

    :ivar name: the ``--relaxation`` name.
    :ivar latent: ``"categorical"`` or ``"binary"``.
    :ivar objective: ``"mc"``, ``"analytic"``, ``"loo"``, ``"vargrad"`` or ``"disarm"`` (see the
        module docstring).
    :ivar params_per_latent: encoder outputs per latent variable.
    :ivar uses_temperature: the annealed temperature enters the method.
    :ivar temperature_backward: backward temperature of ``decoupled-st``.
    :ivar gate_scale: the fixed noise scale of ``stg``.
    :ivar kl: ``"relaxed"`` or ``"categorical"`` (``gumbel-softmax``/``binary-concrete`` only).
    :ivar prior_temperature: temperature of the relaxed prior (``None``: the annealed one).
    """

    name: str
    latent: str
    objective: str
    summary: str
    num_latents: int
    num_categories: int = 2
    temperature_backward: float = 1.0
    gate_scale: float = 0.5
    kl: str = "relaxed"
    prior_temperature: float | None = None

    @property
    def params_per_latent(self) -> int:
        return self.num_categories if self.latent == CATEGORICAL else 1

    @property
    def uses_temperature(self) -> bool:
        return True

    @property
    def encoder_outputs(self) -> int:
        return self.num_latents * self.params_per_latent

    @property
    def decoder_inputs(self) -> int:
        return self.num_latents * (self.num_categories if self.latent == CATEGORICAL else 1)

    def split(self, enc_out: jax.Array) -> jax.Array:
        """Encoder output ``(B, outputs)`` -> ``(B, N, params_per_latent)`` (or ``(B, N)``)."""
        if self.latent == BINARY and self.params_per_latent == 1:
            return enc_out
        return enc_out.reshape(enc_out.shape[:-1] + (self.num_latents, self.params_per_latent))

    # hooks ------------------------------------------------------------------------------------
    def guide_params(self) -> dict[str, jax.Array]:
        """Global guide parameters (``numpyro.param``); called inside the guide."""
        return {}

    def posterior(
        self, enc: jax.Array, temperature: jax.Array, extra: Mapping[str, jax.Array]
    ) -> dist.Distribution:
        raise NotImplementedError

    def prior(self, batch: int, temperature: jax.Array) -> dist.Distribution:
        raise NotImplementedError

    def decode(self, z: jax.Array) -> jax.Array:
        """Site value -> decoder input, flattened to ``(B, decoder_inputs)``."""
        return z.reshape(z.shape[0], -1)

    def discrete_log_probs(
        self, enc: jax.Array, temperature: jax.Array, extra: Mapping[str, jax.Array]
    ) -> jax.Array:
        """Log-probabilities ``(B, N, C)`` of the hard value under the guide."""
        raise NotImplementedError

    def prior_log_probs(self, temperature: jax.Array) -> jax.Array:
        """Log-probabilities ``(N, C)`` of the hard value under the prior (uniform by default)."""
        c = self.num_categories if self.latent == CATEGORICAL else 2
        return jnp.full((self.num_latents, c), -math.log(c))

    def hard_input(self, one_hot: jax.Array) -> jax.Array:
        """One-hot hard values ``(..., N, C)`` -> decoder input ``(..., decoder_inputs)``."""
        if self.latent == BINARY:
            return one_hot[..., 1]
        return one_hot.reshape(one_hot.shape[:-2] + (-1,))

    def relaxed_sample(
        self,
        key: jax.Array,
        enc: jax.Array,
        temperature: jax.Array,
        extra: Mapping[str, jax.Array],
    ) -> jax.Array | None:
        """A relaxed sample on the simplex / unit interval at ``temperature`` (or ``None``)."""
        return None


# categorical family ------------------------------------------------------------------------


class _LogitsCategorical(Method):
    def discrete_log_probs(self, enc, temperature, extra):
        return jax.nn.log_softmax(enc, axis=-1)

    def relaxed_sample(self, key, enc, temperature, extra):
        return nrd.RelaxedOneHotCategorical(temperature, logits=enc).sample(key)


class GumbelSoftmax(_LogitsCategorical):
    def posterior(self, enc, temperature, extra):
        if self.kl == "categorical":
            return JangRelaxedOneHot(temperature, logits=enc).to_event(1)
        return nrd.ExpRelaxedOneHotCategorical(temperature, logits=enc).to_event(1)

    def prior(self, batch, temperature):
        logits = jnp.zeros((batch, self.num_latents, self.num_categories))
        if self.kl == "categorical":
            return nrd.OneHotCategorical(logits=logits).to_event(1)
        t = temperature if self.prior_temperature is None else self.prior_temperature
        return nrd.ExpRelaxedOneHotCategorical(t, logits=logits).to_event(1)

    def decode(self, z):
        if self.kl == "categorical":
            return z.reshape(z.shape[0], -1)
        return jnp.exp(z).reshape(z.shape[0], -1)


class STGumbelSoftmax(_LogitsCategorical):
    def posterior(self, enc, temperature, extra):
        return nrd.RelaxedOneHotCategoricalStraightThrough(temperature, logits=enc).to_event(1)

    def prior(self, batch, temperature):
        logits = jnp.zeros((batch, self.num_latents, self.num_categories))
        return nrd.OneHotCategorical(logits=logits).to_event(1)


class DecoupledST(_LogitsCategorical):
    def posterior(self, enc, temperature, extra):
        return nrd.DecoupledStraightThroughGumbelSoftmax(
            temperature, self.temperature_backward, logits=enc
        ).to_event(1)

    def prior(self, batch, temperature):
        logits = jnp.zeros((batch, self.num_latents, self.num_categories))
        return nrd.OneHotCategorical(logits=logits).to_event(1)

    def discrete_log_probs(self, enc, temperature, extra):
        return jax.nn.log_softmax(enc / temperature, axis=-1)


class ScoreCategorical(_LogitsCategorical):
    @property
    def uses_temperature(self) -> bool:
        return False

    def posterior(self, enc, temperature, extra):
        return nrd.OneHotCategorical(logits=enc).to_event(1)

    def prior(self, batch, temperature):
        logits = jnp.zeros((batch, self.num_latents, self.num_categories))
        return nrd.OneHotCategorical(logits=logits).to_event(1)

    def relaxed_sample(self, key, enc, temperature, extra):
        return None


def _loc_scale(enc: jax.Array) -> tuple[jax.Array, jax.Array]:
    loc, raw = jnp.split(enc, 2, axis=-1)
    return loc, jax.nn.softplus(raw) + 1e-3


class IGR(Method):
    @property
    def params_per_latent(self) -> int:
        return 2 * (self.num_categories - 1)

    def posterior(self, enc, temperature, extra):
        loc, scale = _loc_scale(enc)
        return _simplex.InvertibleGaussian(loc, scale, temperature).to_event(1)

    def prior(self, batch, temperature):
        zeros = jnp.zeros((batch, self.num_latents, self.num_categories - 1))
        return _simplex.InvertibleGaussian(zeros, jnp.ones_like(zeros), temperature).to_event(1)

    def discrete_log_probs(self, enc, temperature, extra):
        return argmax_log_probs(*_loc_scale(enc), residual=True)

    def prior_log_probs(self, temperature):
        zeros = jnp.zeros((self.num_latents, self.num_categories - 1))
        return argmax_log_probs(zeros, jnp.ones_like(zeros), residual=True)

    def relaxed_sample(self, key, enc, temperature, extra):
        loc, scale = _loc_scale(enc)
        return _simplex.InvertibleGaussian(loc, scale, temperature).sample(key)


class LogisticNormal(Method):
    @property
    def params_per_latent(self) -> int:
        return 2 * self.num_categories

    def posterior(self, enc, temperature, extra):
        loc, scale = _loc_scale(enc)
        return _simplex.LogisticNormalSoftmax(loc / temperature, scale / temperature).to_event(1)

    def prior(self, batch, temperature):
        zeros = jnp.zeros((batch, self.num_latents, self.num_categories))
        scale = jnp.full_like(zeros, 1.0) / temperature
        return _simplex.LogisticNormalSoftmax(zeros, scale).to_event(1)

    def discrete_log_probs(self, enc, temperature, extra):
        return argmax_log_probs(*_loc_scale(enc))

    def relaxed_sample(self, key, enc, temperature, extra):
        loc, scale = _loc_scale(enc)
        return _simplex.LogisticNormalSoftmax(loc / temperature, scale / temperature).sample(key)


# binary family -----------------------------------------------------------------------------


def _half_bernoulli(batch: int, num: int) -> dist.Distribution:
    return dist.Bernoulli(probs=jnp.full((batch, num), 0.5)).to_event(1)


class BinaryConcrete(Method):
    def posterior(self, enc, temperature, extra):
        if self.kl == "categorical":
            return JangRelaxedBernoulli(temperature, logits=enc).to_event(1)
        return _bern.LogitRelaxedBernoulli(temperature, logits=enc).to_event(1)

    def prior(self, batch, temperature):
        if self.kl == "categorical":
            return _half_bernoulli(batch, self.num_latents)
        zeros = jnp.zeros((batch, self.num_latents))
        t = temperature if self.prior_temperature is None else self.prior_temperature
        return _bern.LogitRelaxedBernoulli(t, logits=zeros).to_event(1)

    def decode(self, z):
        return z if self.kl == "categorical" else jax.nn.sigmoid(z)

    def discrete_log_probs(self, enc, temperature, extra):
        return _bits(enc)

    def relaxed_sample(self, key, enc, temperature, extra):
        return jax.nn.sigmoid(_bern.LogitRelaxedBernoulli(temperature, logits=enc).sample(key))


class STBernoulli(BinaryConcrete):
    @property
    def uses_temperature(self) -> bool:
        return False

    def posterior(self, enc, temperature, extra):
        return _bern.StraightThroughBernoulli(logits=enc).to_event(1)

    def prior(self, batch, temperature):
        return _half_bernoulli(batch, self.num_latents)

    def decode(self, z):
        return z

    def relaxed_sample(self, key, enc, temperature, extra):
        return None


class RelaxedBernoulliST(BinaryConcrete):
    def posterior(self, enc, temperature, extra):
        return _bern.RelaxedBernoulliStraightThrough(temperature, logits=enc).to_event(1)

    def prior(self, batch, temperature):
        return _half_bernoulli(batch, self.num_latents)

    def decode(self, z):
        return z


class StochasticTimesSmooth(STBernoulli):
    def posterior(self, enc, temperature, extra):
        return SmoothBits(logits=enc).to_event(1)

    def discrete_log_probs(self, enc, temperature, extra):
        return _bits(SmoothBits(logits=enc).bit_logits)


class ScoreBernoulli(STBernoulli):
    def posterior(self, enc, temperature, extra):
        return dist.Bernoulli(logits=enc).to_event(1)


class STG(Method):
    @property
    def uses_temperature(self) -> bool:
        return False

    def posterior(self, enc, temperature, extra):
        return _bern.GaussianRelaxedBernoulli(0.5 + enc, self.gate_scale).to_event(1)

    def prior(self, batch, temperature):
        loc = jnp.full((batch, self.num_latents), 0.5)
        return _bern.GaussianRelaxedBernoulli(loc, self.gate_scale).to_event(1)

    def discrete_log_probs(self, enc, temperature, extra):
        d = enc / self.gate_scale  # (loc - 1/2) / scale: P(z > 1/2) = Phi(d)
        return jnp.stack([log_ndtr(-d), log_ndtr(d)], axis=-1)

    def relaxed_sample(self, key, enc, temperature, extra):
        return _bern.GaussianRelaxedBernoulli(0.5 + enc, self.gate_scale).sample(key)


class HardConcreteMethod(Method):
    def posterior(self, enc, temperature, extra):
        return HardConcreteGate(enc, temperature).to_event(1)

    def prior(self, batch, temperature):
        return HardConcreteGate(jnp.zeros((batch, self.num_latents)), temperature).to_event(1)

    def discrete_log_probs(self, enc, temperature, extra):
        # z > 1/2  <=>  s > s* = (1/2 - low)/(high - low)  <=>  L + log_alpha > beta * logit(s*)
        d = HardConcreteGate(enc, temperature)
        s_star = (0.5 - d.limit_low) / (d.limit_high - d.limit_low)
        return _bits(d.log_alpha - d.temperature * (jnp.log(s_star) - jnp.log1p(-s_star)))

    def relaxed_sample(self, key, enc, temperature, extra):
        return HardConcreteGate(enc, temperature).sample(key)


class CorrelatedGates(BinaryConcrete):
    def guide_params(self):
        eye = jnp.eye(self.num_latents)
        return {
            "gate_scale_tril": numpyro.param(
                "gate_scale_tril", eye, constraint=constraints.corr_cholesky
            )
        }

    def posterior(self, enc, temperature, extra):
        return CopulaGateLogits(enc, extra["gate_scale_tril"], temperature)

    def relaxed_sample(self, key, enc, temperature, extra):
        return jax.nn.sigmoid(
            CopulaGateLogits(enc, extra["gate_scale_tril"], temperature).sample(key)
        )


# registry ----------------------------------------------------------------------------------

_SPECS: dict[str, tuple[str, type[Method], str, str, Callable[[], bool]]] = {
    # name: (latent, class, objective, summary, available)
    "gumbel-softmax": (
        CATEGORICAL,
        GumbelSoftmax,
        "mc",
        "ExpConcrete posterior and prior in log space (Maddison et al.); KL by log q - log p",
        lambda: True,
    ),
    "st-gumbel-softmax": (
        CATEGORICAL,
        STGumbelSoftmax,
        "analytic",
        "straight-through Gumbel-softmax; exact categorical KL to the uniform prior",
        lambda: True,
    ),
    "decoupled-st": (
        CATEGORICAL,
        DecoupledST,
        "analytic",
        "decoupled ST (forward temperature annealed, --temperature-backward); exact KL",
        lambda: True,
    ),
    "igr": (
        CATEGORICAL,
        IGR,
        "analytic",
        "invertible Gaussian reparameterisation; exact KL to an IGR(0, 1) prior",
        lambda: _simplex is not None,
    ),
    "logistic-normal": (
        CATEGORICAL,
        LogisticNormal,
        "analytic",
        "softmax(z / t) of a diagonal Normal; exact KL to N(0, I) on the logits",
        lambda: _simplex is not None,
    ),
    "binary-concrete": (
        BINARY,
        BinaryConcrete,
        "mc",
        "binary Concrete in logit space, posterior and prior; KL by log q - log p",
        lambda: _bern is not None,
    ),
    "st-bernoulli": (
        BINARY,
        STBernoulli,
        "analytic",
        "straight-through Bernoulli (identity backward); exact Bernoulli KL",
        lambda: _bern is not None,
    ),
    "relaxed-bernoulli-st": (
        BINARY,
        RelaxedBernoulliST,
        "analytic",
        "straight-through binary Concrete; exact Bernoulli KL",
        lambda: _bern is not None,
    ),
    "stochastic-times-smooth": (
        BINARY,
        StochasticTimesSmooth,
        "analytic",
        "b ~ Bern(sqrt p), decoder sees b sqrt p; exact KL of the bits",
        lambda: _bern is not None,
    ),
    "stg": (
        BINARY,
        STG,
        "analytic",
        "Gaussian stochastic gates clip(mu + 0.5 eps, 0, 1); exact KL to STG(0.5, 0.5)",
        lambda: _bern is not None,
    ),
    "hard-concrete": (
        BINARY,
        HardConcreteMethod,
        "analytic",
        "hard-concrete gates; KL to HardConcrete(0) (atoms exact, interior by quadrature)",
        lambda: _bern is not None,
    ),
    "correlated-gates": (
        BINARY,
        CorrelatedGates,
        "mc",
        "Gaussian-copula gates with a learned correlation; KL by log q - log p in logit space",
        lambda: _bern is not None,
    ),
}

_SCORE = {
    "reinforce-loo": ("loo", "score function with leave-one-out baselines (TraceLOO_ELBO)"),
    "vargrad": ("vargrad", "score function by the log-variance loss (VarGrad_ELBO)"),
}
# Bernoulli guides only; --particles is the number of antithetic pairs (default 1)
_SCORE_BINARY = {
    "disarm": ("disarm", "DisARM antithetic pairs (DisARM_ELBO); --particles = pairs"),
}


def available_methods(latent: str) -> list[str]:
    """The ``--relaxation`` names offered for ``latent`` with the families installed now."""
    names = [n for n, spec in _SPECS.items() if spec[0] == latent and spec[4]()]
    if TraceLOO_ELBO is not None and (latent == CATEGORICAL or _bern is not None):
        names += list(_SCORE)
    if DisARM_ELBO is not None and latent == BINARY and _bern is not None:
        names += list(_SCORE_BINARY)
    return names


def get_method(
    name: str,
    latent: str,
    *,
    num_latents: int,
    num_categories: int = 10,
    temperature_backward: float = 1.0,
    gate_scale: float = 0.5,
    kl: str = "relaxed",
    prior_temperature: float | None = None,
) -> Method:
    """Build the :class:`Method` called ``name`` for ``latent``.

    :raises ValueError: if the method does not fit ``latent`` or is not available.
    """
    if name not in available_methods(latent):
        raise ValueError(
            f"--relaxation {name!r} is not available for --latent {latent}; "
            f"choose one of {available_methods(latent)}"
        )
    if name in _SCORE or name in _SCORE_BINARY:
        objective, summary = {**_SCORE, **_SCORE_BINARY}[name]
        cls = ScoreCategorical if latent == CATEGORICAL else ScoreBernoulli
    else:
        _, cls, objective, summary, _ = _SPECS[name]
    if name not in ("gumbel-softmax", "binary-concrete"):
        kl, prior_temperature = "relaxed", None
    elif kl == "categorical":
        objective = "analytic"
        summary = "relaxed sample to the decoder, exact discrete KL (Jang et al.'s objective)"
    return cls(
        name=name,
        latent=latent,
        objective=objective,
        summary=summary,
        num_latents=num_latents,
        num_categories=num_categories if latent == CATEGORICAL else 2,
        temperature_backward=temperature_backward,
        gate_scale=gate_scale,
        kl=kl,
        prior_temperature=prior_temperature,
    )


def make_elbo(method: Method, num_particles: int) -> Any:
    """The NumPyro ELBO for ``method.objective`` with ``num_particles`` particles (antithetic
    pairs for ``"disarm"``)."""
    if method.objective == "mc":
        return numpyro.infer.Trace_ELBO(num_particles=num_particles)
    if method.objective == "analytic":
        # TraceMeanField_ELBO (exact KLs) that accepts discrete model sites with pathwise
        # (straight-through or relaxed) guide samples
        return StraightThrough_ELBO(num_particles=num_particles)
    if method.objective == "loo":
        return TraceLOO_ELBO(num_particles=num_particles)
    if method.objective == "vargrad":
        return VarGrad_ELBO(num_particles=num_particles)
    if method.objective == "disarm":
        return DisARM_ELBO(num_pairs=num_particles)
    raise ValueError(f"unknown objective {method.objective!r}")


def method_table(latent: str) -> str:
    """One line per available method: name, objective and summary (for ``--help``)."""
    rows = []
    for name in available_methods(latent):
        if name in _SCORE or name in _SCORE_BINARY:
            objective, summary = {**_SCORE, **_SCORE_BINARY}[name]
        else:
            objective, summary = _SPECS[name][2], _SPECS[name][3]
        rows.append(f"  {name:<24} [{objective}] {summary}")
    return "\n".join(rows)
