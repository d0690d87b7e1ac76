r"""The Gaussian-based laws: IGR and the logistic-normal laws on the simplex, and their
two-category case on the unit interval, :class:`LogitNormal` (the sigmoid of a Normal).

The three simplex distributions are logistic-normal laws: the additive log-ratio coordinates
:math:`\operatorname{alr}(x)_k = \log(x_k/x_K)` of a sample are Gaussian. They differ in how the
Gaussian is parameterised, and each exposes that Gaussian as :attr:`alr_loc` and
:attr:`alr_covariance_matrix` (used by the exact KL divergences in
:mod:`numpyro_relax.distributions.kl_simplex` and by :mod:`numpyro_relax.laplace_bridge`).

Samples are computed in log space (``log_softmax``), their logs floored at ``log(tiny)``
(``-87.3`` in float32), and returned as :math:`x = \exp(\log x)` together with those logs as an
intermediate: no coordinate rounds to 0 at low temperatures or extreme locations, so ``log_prob``
from the value alone (NumPyro's ``replay`` of a model's prior at a guide's sample, a masked site)
is finite with finite gradients and equals ``log_prob`` from the intermediate. A value with
exact zeros is scored with them floored at ``tiny``. Densities are with respect
to Lebesgue measure on the first ``K-1`` coordinates; the change of variables from the ALR
coordinates contributes :math:`-\sum_{k=1}^K \log x_k` (see
:mod:`numpyro_relax.distributions.transforms`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax, random
from jax.scipy.special import logsumexp
from jax.typing import ArrayLike
from numpyro.distributions import constraints
from numpyro.distributions.batch_util import _default_vmap_over, vmap_over
from numpyro.distributions.continuous import Normal
from numpyro.distributions.distribution import Distribution, TransformedDistribution
from numpyro.distributions.transforms import SigmoidTransform
from numpyro.distributions.util import validate_sample

from numpyro_relax.distributions.transforms import additive_log_ratio, log_softmax_plus_plus
from numpyro_relax.distributions.util import (
    HALF_LOG_2PI,
    as_float_array,
    broadcast_batch,
    check_positive,
    jit_ndtr,
    jit_ndtri,
    logit,
    no_closed_form,
    safe_log,
    simplex_from_log,
    tril_half_log_det,
    tril_mahalanobis,
    tril_matvec,
    validation_on,
)

__all__ = ["InvertibleGaussian", "LogisticNormal", "LogisticNormalSoftmax", "LogitNormal"]

_NO_CLOSED_FORM = (
    "a logistic-normal law has no closed form for it (a Gaussian expectation of a softmax)"
)


def _vector_shape(dist_name: str, min_size: int, **arrays: jax.Array) -> tuple[int, ...]:
    """Broadcast the full shapes of per-coordinate parameters; the last axis is the event."""
    shapes = {k: jnp.shape(v) for k, v in arrays.items()}
    for k, s in shapes.items():
        if len(s) < 1:
            raise ValueError(f"{dist_name}: `{k}` must have at least one dimension (the event).")
    try:
        shape = lax.broadcast_shapes(*shapes.values())
    except ValueError as e:
        desc = ", ".join(f"`{k}` shape {v}" for k, v in shapes.items())
        raise ValueError(f"{dist_name}: incompatible shapes: {desc}.") from e
    if shape[-1] < min_size:
        raise ValueError(
            f"{dist_name}: the last axis of {', '.join(f'`{k}`' for k in shapes)} needs at least "
            f"{min_size} entries, got {shape[-1]}."
        )
    return shape


def _log_x(value: ArrayLike, intermediates: list | None) -> jax.Array:
    return intermediates[0] if intermediates else safe_log(value)


def mvn_tril_log_prob(y: ArrayLike, loc: ArrayLike, scale_tril: ArrayLike) -> jax.Array:
    """Log density of :math:`N(\\mathrm{loc}, L L^\\top)` at ``y`` (batched, last axis the event)."""
    diff = jnp.asarray(y) - loc
    n = jnp.shape(diff)[-1]
    # the factor is not broadcast to the sample: draws share one solve per distinct factor
    half_log_det = tril_half_log_det(scale_tril)
    return -0.5 * tril_mahalanobis(scale_tril, diff) - half_log_det - n * HALF_LOG_2PI


def diag_plus_rank_one_log_prob(w: ArrayLike, scale: ArrayLike) -> jax.Array:
    r"""ALR Gaussian log density of :class:`LogisticNormalSoftmax`, in :math:`O(K)`.

    With :math:`w = \log x - \mathrm{loc}` (``K`` entries; any common shift of ``w`` gives the
    same value), :math:`v_k = s_k^{-2}` and :math:`V = \sum_k v_k`, the ALR residual
    :math:`r_k = w_k - w_K` has covariance :math:`\Sigma = D + s_K^2 \mathbf{1}\mathbf{1}^\top`,
    :math:`D = \operatorname{diag}(s_{1:K-1}^2)`. The matrix determinant lemma gives
    :math:`\det\Sigma = \det D\,(1 + s_K^2\,\mathbf{1}^\top D^{-1}\mathbf{1}) = \prod_{k=1}^K s_k^2
    \cdot V`, and Sherman--Morrison
    :math:`r^\top\Sigma^{-1}r = \sum_{k<K} v_k r_k^2 - (\sum_{k<K} v_k r_k)^2 / V`, which equals
    the weighted sum of squares :math:`\sum_{k=1}^K v_k (w_k - \bar w)^2` about the precision-
    weighted mean :math:`\bar w = \sum_k v_k w_k / V` (the form used: no cancellation).
    """
    w = jnp.asarray(w)
    log_v = -2.0 * jnp.log(scale)
    v = jnp.exp(log_v)
    log_big_v = logsumexp(log_v, axis=-1)
    w_bar = jnp.sum(v * w, axis=-1, keepdims=True) / jnp.exp(log_big_v)[..., None]
    quad = jnp.sum(v * (w - w_bar) ** 2, axis=-1)
    log_det = -jnp.sum(log_v, axis=-1) + log_big_v
    n = jnp.shape(w)[-1] - 1
    return -0.5 * quad - 0.5 * log_det - n * HALF_LOG_2PI


class InvertibleGaussian(Distribution):
    r"""Invertible Gaussian reparameterization, IGR-I (Potapczynski et al., 2020).

    With ``K-1`` Gaussian coordinates and a positive constant :math:`\delta`,

    .. math::
        y = (\mu + \sigma \odot \varepsilon)/\tau, \quad \varepsilon \sim N(0, I_{K-1}), \qquad
        x_{1:K-1} = \operatorname{softmax}_{++}(y) = \frac{e^{y}}{\sum_{j<K} e^{y_j} + \delta},
        \qquad x_K = 1 - \sum_{k<K} x_k.

    Softmax++ is a bijection onto the open simplex (its inverse is
    :math:`y_k = \log(x_k/x_K) + \log\delta`) with :math:`\log|\det J| = \sum_{k=1}^K \log x_k`,
    so the density with respect to Lebesgue measure on :math:`x_{1:K-1}` is exact:

    .. math::
        \log p(x) = \sum_{k<K} \log N(\tau y_k;\, \mu_k, \sigma_k^2) + (K-1)\log\tau
                    - \sum_{k=1}^{K} \log x_k,
        \qquad y_k = \log\frac{x_k}{x_K} + \log\delta.

    The sample is computed as :math:`\log x = \operatorname{log\_softmax}([y, \log\delta])` (a
    max-shift, finite in float32 down to :math:`\tau = 10^{-2}` with :math:`|\mu|` in the tens)
    and returned with :math:`\log x` (floored at ``log(tiny)``) as an intermediate; the
    residual :math:`x_K` is :math:`\exp(\log x_K)`, equal to :math:`1 - \sum_{k<K} x_k`
    without the cancellation.

    As :math:`\tau \to 0` the sample tends to the vertex :math:`\arg\max([z, 0])` with
    :math:`z = \mu + \sigma\varepsilon`; for :math:`\delta = 1` the event "the residual is the
    largest coordinate" is exactly :math:`\{z_k < 0\ \forall k\}` at every temperature, with
    probability :math:`\prod_k \Phi(-\mu_k/\sigma_k)`.

    The law is a logistic-normal: :math:`\operatorname{alr}(x) \sim
    N(\mu/\tau - \log\delta, \operatorname{diag}(\sigma/\tau)^2)`, which makes the KL between two
    IGRs exact for any temperatures and deltas.

    :param loc: :math:`\mu`, shape ``batch_shape + (K-1,)``.
    :param scale: :math:`\sigma > 0`, broadcastable with ``loc``.
    :param temperature: :math:`\tau > 0`, broadcastable to the batch shape.
    :param delta: :math:`\delta > 0`, broadcastable to the batch shape (default 1).

    **References:**

    1. *Invertible Gaussian Reparameterization: Revisiting the Gumbel-Softmax*,
       A. Potapczynski, G. Loaiza-Ganem, J. P. Cunningham (NeurIPS 2020).
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "scale": constraints.independent(constraints.positive, 1),
        "temperature": constraints.positive,
        "delta": constraints.positive,
    }
    pytree_data_fields = ("loc", "scale", "temperature", "delta")
    reparametrized_params = ["loc", "scale", "temperature", "delta"]
    support = constraints.simplex

    def __init__(
        self,
        loc: ArrayLike,
        scale: ArrayLike,
        temperature: ArrayLike,
        delta: ArrayLike = 1.0,
        *,
        validate_args: bool | None = None,
    ) -> None:
        name = type(self).__name__
        loc = as_float_array("loc", loc)
        scale = as_float_array("scale", scale)
        validate = validation_on(self, validate_args)
        temperature = check_positive(name, "temperature", temperature, validate=validate)
        delta = check_positive(name, "delta", delta, validate=validate)
        vector = _vector_shape(name, 1, loc=loc, scale=scale)
        batch_shape = broadcast_batch(
            name,
            **{"loc/scale": vector[:-1]},
            temperature=jnp.shape(temperature),
            delta=jnp.shape(delta),
        )
        event = vector[-1:]
        self.loc = jnp.broadcast_to(loc, batch_shape + event)
        self.scale = jnp.broadcast_to(scale, batch_shape + event)
        self.temperature = jnp.broadcast_to(temperature, batch_shape)
        self.delta = jnp.broadcast_to(delta, batch_shape)
        super().__init__(batch_shape, (event[0] + 1,), validate_args=validate_args)

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        shape = sample_shape + self.loc.shape
        eps = random.normal(key, shape, dtype=self.loc.dtype)
        y = (self.loc + self.scale * eps) / self.temperature[..., None]
        x, log_x = simplex_from_log(log_softmax_plus_plus(y, self.delta))
        return x, [log_x]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self.sample_with_intermediates(key, sample_shape)[0]

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        log_x = _log_x(value, intermediates)
        tau = self.temperature[..., None]
        z = (additive_log_ratio(None, log_x) + jnp.log(self.delta)[..., None]) * tau
        normal = -0.5 * ((z - self.loc) / self.scale) ** 2 - jnp.log(self.scale) - HALF_LOG_2PI
        return jnp.sum(normal + jnp.log(tau), axis=-1) - jnp.sum(log_x, axis=-1)

    @property
    def alr_loc(self) -> jax.Array:
        r"""Mean of :math:`\operatorname{alr}(x)`: :math:`\mu/\tau - \log\delta`."""
        return self.loc / self.temperature[..., None] - jnp.log(self.delta)[..., None]

    @property
    def alr_scale(self) -> jax.Array:
        r"""Standard deviations of the (independent) ALR coordinates, :math:`\sigma/\tau`."""
        return self.scale / self.temperature[..., None]

    @property
    def alr_covariance_matrix(self) -> jax.Array:
        """Covariance of :math:`\\operatorname{alr}(x)`, the diagonal :math:`(\\sigma/\\tau)^2`."""
        s = self.alr_scale
        return s[..., :, None] * s[..., None, :] * jnp.eye(s.shape[-1], dtype=s.dtype)

    @property
    def mean(self) -> jax.Array:
        raise no_closed_form(self, "mean", _NO_CLOSED_FORM)

    @property
    def variance(self) -> jax.Array:
        raise no_closed_form(self, "variance", _NO_CLOSED_FORM)

    def entropy(self) -> jax.Array:
        raise no_closed_form(self, "entropy", _NO_CLOSED_FORM)


class LogisticNormal(Distribution):
    r"""Aitchison's logistic-normal law in additive-log-ratio coordinates.

    .. math::
        y \sim N(\mu, L L^\top) \in \mathbb{R}^{K-1}, \qquad
        x = \operatorname{softmax}([y, 0]) \iff y_k = \log(x_k/x_K),

    .. math::
        \log p(x) = \log N(\operatorname{alr}(x);\, \mu, L L^\top) - \sum_{k=1}^K \log x_k,

    a density with respect to Lebesgue measure on :math:`x_{1:K-1}` (the Jacobian of
    :math:`y \mapsto x_{1:K-1}` has determinant :math:`\prod_{k=1}^K x_k`). ``mean`` and
    ``variance`` have no closed form.

    :param loc: :math:`\mu`, shape ``batch_shape + (K-1,)``.
    :param scale_tril: lower Cholesky factor :math:`L` of the ALR covariance,
        shape ``batch_shape + (K-1, K-1)``.

    **References:**

    1. *The Statistical Analysis of Compositional Data*, J. Aitchison (Chapman & Hall, 1986).
    2. *Logistic-normal distributions: some properties and uses*, J. Aitchison, S. M. Shen
       (Biometrika 67, 1980).
    """

    arg_constraints = {"loc": constraints.real_vector, "scale_tril": constraints.lower_cholesky}
    pytree_data_fields = ("loc", "scale_tril")
    reparametrized_params = ["loc", "scale_tril"]
    support = constraints.simplex

    def __init__(
        self, loc: ArrayLike, scale_tril: ArrayLike, *, validate_args: bool | None = None
    ) -> None:
        name = type(self).__name__
        loc = as_float_array("loc", loc)
        scale_tril = as_float_array("scale_tril", scale_tril)
        if loc.ndim < 1 or loc.shape[-1] < 1:
            raise ValueError(f"{name}: `loc` needs a last axis of K-1 >= 1 entries.")
        n = loc.shape[-1]
        if scale_tril.ndim < 2 or scale_tril.shape[-2:] != (n, n):
            raise ValueError(
                f"{name}: `scale_tril` must have shape batch_shape + ({n}, {n}) to match `loc`, "
                f"got {scale_tril.shape}."
            )
        batch_shape = broadcast_batch(name, loc=loc.shape[:-1], scale_tril=scale_tril.shape[:-2])
        self.loc = jnp.broadcast_to(loc, batch_shape + (n,))
        # a factor shared by the batch is kept unbroadcast: one solve with every right-hand side
        self.scale_tril = scale_tril
        super().__init__(batch_shape, (n + 1,), validate_args=validate_args)

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        eps = random.normal(key, sample_shape + self.loc.shape, dtype=self.loc.dtype)
        y = self.loc + tril_matvec(self.scale_tril, eps)
        x, log_x = simplex_from_log(log_softmax_plus_plus(y, 1.0))
        return x, [log_x]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self.sample_with_intermediates(key, sample_shape)[0]

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        log_x = _log_x(value, intermediates)
        y = additive_log_ratio(None, log_x)
        return mvn_tril_log_prob(y, self.loc, self.scale_tril) - jnp.sum(log_x, axis=-1)

    @property
    def covariance_matrix(self) -> jax.Array:
        """The ALR covariance :math:`L L^\\top`."""
        cov = jnp.matmul(self.scale_tril, jnp.swapaxes(self.scale_tril, -1, -2))
        return jnp.broadcast_to(cov, self.batch_shape + cov.shape[-2:])

    @property
    def alr_loc(self) -> jax.Array:
        return self.loc

    @property
    def alr_covariance_matrix(self) -> jax.Array:
        return self.covariance_matrix

    @property
    def mean(self) -> jax.Array:
        raise no_closed_form(self, "mean", _NO_CLOSED_FORM)

    @property
    def variance(self) -> jax.Array:
        raise no_closed_form(self, "variance", _NO_CLOSED_FORM)

    def entropy(self) -> jax.Array:
        raise no_closed_form(self, "entropy", _NO_CLOSED_FORM)


class LogisticNormalSoftmax(Distribution):
    r"""Softmax of a ``K``-dimensional diagonal Normal, with its exact density on the simplex.

    .. math::
        z \sim N(\mu, \operatorname{diag}(s^2)) \in \mathbb{R}^K, \qquad x = \operatorname{softmax}(z).

    Softmax is not injective (:math:`z` and :math:`z + c\mathbf{1}` give the same :math:`x`), but
    :math:`\operatorname{alr}(x) = z_{1:K-1} - z_K` is Gaussian, so this is a logistic-normal law
    with ALR mean :math:`\mu_{1:K-1} - \mu_K` and ALR covariance
    :math:`\Sigma = \operatorname{diag}(s_{1:K-1}^2) + s_K^2 \mathbf{1}\mathbf{1}^\top`
    (diagonal plus rank one). Its density is

    .. math::
        \log p(x) = -\tfrac{K-1}{2}\log 2\pi - \tfrac12 \Big(\sum_{k=1}^K \log s_k^2
        + \log\sum_{k=1}^K s_k^{-2}\Big) - \tfrac12 \sum_{k=1}^K \frac{(w_k - \bar w)^2}{s_k^2}
        - \sum_{k=1}^K \log x_k,

    with :math:`w = \log x - \mu` and :math:`\bar w = \sum_k s_k^{-2} w_k / \sum_k s_k^{-2}`:
    the matrix determinant lemma and Sherman--Morrison applied to :math:`\Sigma`, in :math:`O(K)`
    (see :func:`diag_plus_rank_one_log_prob`). Shifting ``loc`` by a constant leaves the law
    unchanged.

    :param loc: :math:`\mu`, shape ``batch_shape + (K,)``.
    :param scale: :math:`s > 0` (standard deviations), broadcastable with ``loc``.

    **References:**

    1. *Logistic-normal distributions: some properties and uses*, J. Aitchison, S. M. Shen
       (Biometrika 67, 1980).
    2. *Fast Predictive Uncertainty for Classification with Bayesian Deep Networks*,
       M. Hobbhahn, A. Kristiadi, P. Hennig (UAI 2022, arXiv:2003.01227).
    """

    arg_constraints = {
        "loc": constraints.real_vector,
        "scale": constraints.independent(constraints.positive, 1),
    }
    pytree_data_fields = ("loc", "scale")
    reparametrized_params = ["loc", "scale"]
    support = constraints.simplex

    def __init__(
        self, loc: ArrayLike, scale: ArrayLike, *, validate_args: bool | None = None
    ) -> None:
        name = type(self).__name__
        loc = as_float_array("loc", loc)
        scale = as_float_array("scale", scale)
        shape = _vector_shape(name, 2, loc=loc, scale=scale)
        self.loc = jnp.broadcast_to(loc, shape)
        self.scale = jnp.broadcast_to(scale, shape)
        super().__init__(shape[:-1], shape[-1:], validate_args=validate_args)

    def sample_with_intermediates(
        self, key: jax.Array, sample_shape: tuple[int, ...] = ()
    ) -> tuple[jax.Array, list[jax.Array]]:
        eps = random.normal(key, sample_shape + self.loc.shape, dtype=self.loc.dtype)
        x, log_x = simplex_from_log(jax.nn.log_softmax(self.loc + self.scale * eps, axis=-1))
        return x, [log_x]

    def sample(self, key: jax.Array, sample_shape: tuple[int, ...] = ()) -> jax.Array:
        return self.sample_with_intermediates(key, sample_shape)[0]

    @validate_sample
    def log_prob(self, value: ArrayLike, intermediates: list | None = None) -> jax.Array:
        log_x = _log_x(value, intermediates)
        return diag_plus_rank_one_log_prob(log_x - self.loc, self.scale) - jnp.sum(log_x, axis=-1)

    @property
    def alr_loc(self) -> jax.Array:
        return self.loc[..., :-1] - self.loc[..., -1:]

    @property
    def alr_covariance_matrix(self) -> jax.Array:
        var = self.scale**2
        n = var.shape[-1] - 1
        diag = var[..., :-1, None] * jnp.eye(n, dtype=var.dtype)
        return diag + var[..., -1, None, None]

    @property
    def mean(self) -> jax.Array:
        raise no_closed_form(self, "mean", _NO_CLOSED_FORM)

    @property
    def variance(self) -> jax.Array:
        raise no_closed_form(self, "variance", _NO_CLOSED_FORM)

    def entropy(self) -> jax.Array:
        raise no_closed_form(self, "entropy", _NO_CLOSED_FORM)


@vmap_over.register
def _(dist: InvertibleGaussian, loc=None, scale=None, temperature=None, delta=None):
    return _default_vmap_over(dist, loc=loc, scale=scale, temperature=temperature, delta=delta)


@vmap_over.register
def _(dist: LogisticNormal, loc=None, scale_tril=None):
    return _default_vmap_over(dist, loc=loc, scale_tril=scale_tril)


@vmap_over.register
def _(dist: LogisticNormalSoftmax, loc=None, scale=None):
    return _default_vmap_over(dist, loc=loc, scale=scale)


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
            Normal(self.loc, self.scale, validate_args=validate_args),
            SigmoidTransform(),
            validate_args=validate_args,
        )

    @property
    def median(self) -> jax.Array:
        return jax.nn.sigmoid(self.loc)

    def cdf(self, value: ArrayLike) -> jax.Array:
        return jit_ndtr((logit(value) - self.loc) / self.scale)

    def icdf(self, q: ArrayLike) -> jax.Array:
        return jax.nn.sigmoid(self.loc + self.scale * jit_ndtri(q))

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


@vmap_over.register
def _(dist: LogitNormal, loc=None, scale=None):
    dist_axes = _default_vmap_over(dist, loc=loc, scale=scale)
    dist_axes.transforms = None
    dist_axes.base_dist = vmap_over(dist.base_dist, loc=loc, scale=scale)
    return dist_axes
