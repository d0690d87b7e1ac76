"""Control-variate functional estimators built on the conditional relaxation: REBAR and RELAX
(contract in :mod:`numpyro_relax.estimators`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from numpyro_relax.infer.checks import (
    Family,
    _check_positive,
    _prepare,
)
from numpyro_relax.infer.core import uniform as _uniform
from numpyro_relax.infer.relaxation import (
    _conditional,
    _hard,
    _log_prob,
    _perturb,
    _soft,
)

# --------------------------------------------------------------------------------------------
# control-variate estimators with the conditional relaxation: REBAR, RELAX
# --------------------------------------------------------------------------------------------


def _cv_sample(
    f: Callable[[jax.Array], jax.Array],
    control: Callable[[jax.Array], jax.Array],
    theta: jax.Array,
    u: jax.Array,
    v: jax.Array,
    family: str,
) -> tuple[jax.Array, jax.Array]:
    """One-sample REBAR/RELAX gradient with control variate ``control(z)`` (noise ``u``, ``v``).

    The coefficient of the score is computed from ``stop_gradient(theta)`` rather than with
    ``stop_gradient`` on its value, so that it stays differentiable in the parameters of
    ``control`` (needed by :func:`relax_variance_grad`).
    """
    b = _hard(_perturb(lax.stop_gradient(theta), u, family), family)
    fb = f(b)
    coef = fb - control(_conditional(lax.stop_gradient(theta), v, b, family))

    def surrogate(t: jax.Array) -> jax.Array:
        z = _perturb(t, u, family)
        z_tilde = _conditional(t, v, b, family)
        return coef * _log_prob(t, b, family) + control(z) - control(z_tilde)

    return fb, jax.grad(surrogate)(theta)


def _cv_noise(key: jax.Array, num_samples: int, theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Uniforms ``u`` (for ``z``) and ``v`` (for ``z~ | b``), ``num_samples`` of each."""
    noise = _uniform(key, (2, num_samples) + theta.shape, theta.dtype)
    return noise[0], noise[1]


def rebar(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 0.5,
    eta: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""REBAR estimator: REINFORCE with the concrete relaxation as a control variate.

    With :math:`z` the relaxed logit-space variable (see the module docstring),
    :math:`b = H(z)`, and :math:`\tilde z \sim p_\theta(z \mid b)` reparameterised by an
    independent uniform :math:`v` (Bernoulli: :math:`u \mid b` is uniform on
    :math:`(1 - \sigma(\theta), 1)` or :math:`(0, 1 - \sigma(\theta))`; categorical: the
    top Gumbel at :math:`b` is standard Gumbel, the others are Gumbels truncated below it),

    .. math::

        \hat g = \big(f(b) - \eta f(\sigma_\lambda(\tilde z))\big)\nabla_\theta \log p_\theta(b)
            + \eta \nabla_\theta f(\sigma_\lambda(z)) - \eta \nabla_\theta
            f(\sigma_\lambda(\tilde z)),

    averaged over ``num_samples`` draws. Unbiased for every temperature :math:`\lambda > 0` and
    scale :math:`\eta`, because :math:`\mathbb{E}[c(z)] = \mathbb{E}_b\,\mathbb{E}[c(\tilde z)
    \mid b]`. ``f`` must accept relaxed inputs (the unit cube / the simplex) and be
    differentiable there. To tune :math:`\lambda` and :math:`\eta` by minimising the variance,
    use :func:`relax_variance_grad` with the surrogate
    ``lambda p, z: p["eta"] * f(sigmoid(z / p["temperature"]))``.

    :param f: maps one sample (shape of ``logits``) to a scalar; evaluated at discrete and
        relaxed points.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples (three evaluations of ``f`` each).
    :param temperature: relaxation temperature :math:`\lambda > 0`.
    :param eta: control-variate scale :math:`\eta`.
    :return: ``(value_estimate, grad_estimate)``; the value estimate averages :math:`f(b)`.

    **References:**

    1. *REBAR: Low-variance, unbiased gradient estimates for discrete latent variable models*,
       George Tucker, Andriy Mnih, Chris J. Maddison, Dieterich Lawson, Jascha Sohl-Dickstein
       (NeurIPS 2017)
    """
    theta, n = _prepare("rebar", f, logits, family, num_samples)
    _check_positive("rebar", "temperature", temperature)

    def control(z: jax.Array) -> jax.Array:
        return eta * f(_soft(z, temperature, family))

    fs, grads = jax.vmap(lambda u, v: _cv_sample(f, control, theta, u, v, family))(
        *_cv_noise(key, n, theta)
    )
    return jnp.mean(fs), jnp.mean(grads, axis=0)


def _relax_checks(name: str, surrogate: Any, surrogate_params: Any, theta: jax.Array) -> None:
    if not callable(surrogate):
        raise ValueError(f"{name}: `surrogate` must be callable(params, z), got {surrogate!r}.")
    out = jax.eval_shape(
        surrogate, surrogate_params, jax.ShapeDtypeStruct(theta.shape, theta.dtype)
    )
    if not hasattr(out, "shape") or out.shape != ():
        raise ValueError(
            f"{name}: `surrogate(surrogate_params, z)` must return a scalar for z of shape "
            f"{theta.shape}, got {getattr(out, 'shape', type(out).__name__)}."
        )


def relax(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    surrogate: Callable[[Any, jax.Array], jax.Array],
    surrogate_params: Any,
) -> tuple[jax.Array, jax.Array]:
    r"""RELAX estimator: REBAR with a free-form learned control variate :math:`c_\phi`.

    .. math::

        \hat g = \big(f(b) - c_\phi(\tilde z)\big)\nabla_\theta \log p_\theta(b)
            + \nabla_\theta c_\phi(z) - \nabla_\theta c_\phi(\tilde z),

    with :math:`z`, :math:`b = H(z)` and :math:`\tilde z \sim p_\theta(z \mid b)` as in
    :func:`rebar`. ``surrogate(surrogate_params, z)`` receives the relaxed **logit-space**
    variable :math:`z` (shape of ``logits``; :math:`\theta + \mathrm{Logistic}` for Bernoulli,
    :math:`\log\mathrm{softmax}(\theta) + \mathrm{Gumbel}` for categorical) and returns a scalar;
    it must be differentiable in ``z``. Unbiased for any surrogate; REBAR is the surrogate
    :math:`c(z) = \eta f(\sigma_\lambda(z))`. Here ``f`` is only evaluated at discrete samples.
    Fit :math:`\phi` by minimising the estimator's variance with :func:`relax_variance_grad`.

    :param f: maps one discrete sample to a scalar.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples.
    :param surrogate: the control variate ``c(params, z) -> scalar``.
    :param surrogate_params: its parameters :math:`\phi` (any pytree).
    :return: ``(value_estimate, grad_estimate)``; the value estimate averages :math:`f(b)`.

    **References:**

    1. *Backpropagation through the Void: Optimizing control variates for black-box gradient
       estimation*, Will Grathwohl, Dami Choi, Yuhuai Wu, Geoffrey Roeder, David Duvenaud
       (ICLR 2018)
    2. *REBAR: Low-variance, unbiased gradient estimates for discrete latent variable models*,
       George Tucker et al. (NeurIPS 2017)
    """
    value, grad, _ = _relax_impl(
        "relax", f, logits, key, family, num_samples, surrogate, surrogate_params, False
    )
    return value, grad


def relax_variance_grad(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    surrogate: Callable[[Any, jax.Array], jax.Array],
    surrogate_params: Any,
) -> tuple[jax.Array, jax.Array, Any]:
    r"""RELAX estimate plus the gradient of its variance with respect to the surrogate.

    Because :math:`\mathbb{E}[\hat g]` does not depend on :math:`\phi`,

    .. math::

        \nabla_\phi \operatorname{tr}\operatorname{Var}[\hat g]
            = \nabla_\phi \mathbb{E}\,\lVert \hat g \rVert^2
            \approx \frac{1}{n} \sum_{i=1}^n \nabla_\phi \lVert \hat g_i \rVert^2,

    where :math:`\hat g_i` are the one-sample RELAX estimates (their mean is the returned
    gradient estimate). This is the gradient of the per-sample variance; the variance of the
    ``num_samples`` average is that divided by ``n``, with the same minimiser. The samples are
    the ones :func:`relax` draws with the same ``key``. Use it in an optax loop::

        value, g, g_phi = relax_variance_grad(f, theta, key, surrogate=c, surrogate_params=phi)
        updates, opt_state = opt.update(g_phi, opt_state)
        phi = optax.apply_updates(phi, updates)

    :param f: maps one discrete sample to a scalar.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key (the same key gives the samples of :func:`relax`).
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples :math:`n`.
    :param surrogate: the control variate ``c(params, z) -> scalar``.
    :param surrogate_params: its parameters :math:`\phi` (any pytree).
    :return: ``(value_estimate, grad_estimate, surrogate_params_grad)``; the last has the
        structure of ``surrogate_params``.

    **References:**

    1. *Backpropagation through the Void: Optimizing control variates for black-box gradient
       estimation*, Will Grathwohl et al. (ICLR 2018)
    """
    return _relax_impl(
        "relax_variance_grad",
        f,
        logits,
        key,
        family,
        num_samples,
        surrogate,
        surrogate_params,
        True,
    )


def _relax_impl(
    name: str,
    f: Callable,
    logits: ArrayLike,
    key: jax.Array,
    family: Any,
    num_samples: Any,
    surrogate: Any,
    surrogate_params: Any,
    with_variance_grad: bool,
) -> tuple[jax.Array, jax.Array, Any]:
    theta, n = _prepare(name, f, logits, family, num_samples)
    _relax_checks(name, surrogate, surrogate_params, theta)
    u, v = _cv_noise(key, n, theta)

    def estimates(params: Any) -> tuple[jax.Array, jax.Array]:
        def control(z: jax.Array) -> jax.Array:
            return surrogate(params, z)

        return jax.vmap(lambda u_i, v_i: _cv_sample(f, control, theta, u_i, v_i, family))(u, v)

    if not with_variance_grad:
        fs, grads = estimates(surrogate_params)
        return jnp.mean(fs), jnp.mean(grads, axis=0), None

    def second_moment(params: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        fs, grads = estimates(params)
        sq = jnp.mean(jnp.sum(grads.reshape(n, -1) ** 2, axis=-1))
        return sq, (fs, grads)

    (_, (fs, grads)), params_grad = jax.value_and_grad(second_moment, has_aux=True)(
        surrogate_params
    )
    return jnp.mean(fs), jnp.mean(grads, axis=0), params_grad
