r"""The estimators of :data:`~numpyro_relax.infer.core.ESTIMATORS` as functions of ``(f, logits,
key)``, re-exported by :mod:`numpyro_relax.estimators` (which documents the contract: ``f`` maps
one sample with the shape of ``logits`` to a scalar; ``family="bernoulli"`` or
``"categorical"`` (one-hot samples); ``num_samples`` independent samples, vectorised).

Each function runs the same code as the ``estimator=`` name of
:class:`~numpyro_relax.infer.TraceDiscrete_ELBO` (the pathwise surrogate of the core, or the
leave-one-out advantage), on the single "site" ``b`` whose cost is ``f(b)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax, random
from jax.typing import ArrayLike

from numpyro_relax.infer.checks import Family, _check_positive, _prepare
from numpyro_relax.infer.core import ESTIMATORS, resolve_options
from numpyro_relax.infer.relaxation import _hard, _noise, _perturb, _soft
from numpyro_relax.infer.score_function import reinforce

__all__ = ["decoupled_st", "gst", "gumbel_rao", "loo", "reinmax", "st", "st_gumbel", "vargrad"]


def _pathwise(
    estimator: str,
    name: str,
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    family: Any,
    num_samples: Any,
    options: dict[str, Any],
) -> tuple[jax.Array, jax.Array]:
    theta, n = _prepare(name, f, logits, family, num_samples)
    spec = ESTIMATORS[estimator]
    opts = resolve_options(spec, options, name)
    site = "bernoulli" if family == "bernoulli" else "onehot"

    def one(k: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.value_and_grad(lambda t: f(spec.relax(t, k, site, **opts)))(theta)

    fs, grads = jax.vmap(one)(random.split(key, n))
    return jnp.mean(fs), jnp.mean(grads, axis=0)


def st(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
) -> tuple[jax.Array, jax.Array]:
    r"""Straight-through (**biased**), the ``"st"`` estimator: :math:`f` is evaluated at an
    exact sample :math:`b` and differentiated through :math:`b + (\pi - \mathrm{sg}(\pi))`,
    :math:`\pi = \sigma(\theta)` (bits) or :math:`\mathrm{softmax}(\theta)` (one-hot):

    .. math::

        \hat g = \frac1n\sum_{i=1}^n \Big(\frac{\partial \pi}{\partial\theta}\Big)^{\!\top}
            \nabla f(b_i).

    **References:** *Estimating or Propagating Gradients Through Stochastic Neurons for
    Conditional Computation*, Y. Bengio, N. Léonard, A. Courville (2013).
    """
    return _pathwise("st", "st", f, logits, key, family, num_samples, {})


def st_gumbel(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""Straight-through Gumbel-softmax (**biased**), the ``"st-gumbel"`` estimator: forward
    :math:`b = H(\theta + g)`, backward the Concrete sample (logistic noise and a sigmoid for
    bits):

    .. math::

        \hat g = \frac1n\sum_{i=1}^n \Big(\frac{\partial\,\mathrm{softmax}((\theta + g_i)/\lambda)}
            {\partial\theta}\Big)^{\!\top} \nabla f(b_i).

    The same estimator as :func:`numpyro_relax.estimators.straight_through`, whose default
    temperature is 0.5.

    **References:** *Categorical Reparameterization with Gumbel-Softmax*, E. Jang, S. Gu,
    B. Poole (ICLR 2017).
    """
    options = {"temperature": temperature}
    return _pathwise("st-gumbel", "st_gumbel", f, logits, key, family, num_samples, options)


def decoupled_st(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature_forward: ArrayLike = 1.0,
    temperature_backward: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""Decoupled straight-through Gumbel-softmax (**biased**), the ``"decoupled-st"``
    estimator: forward an exact sample of :math:`\mathrm{softmax}(\theta/\tau_f)` (with
    :math:`\tau_f \neq 1` the samples are *not* from :math:`p_\theta`: the forward temperature
    trades exploration for bias in the value too), backward the tempered soft sample:

    .. math::

        b = \mathrm{onehot}\big(\arg\max(\theta/\tau_f + g)\big), \qquad
        \hat g = \Big(\frac{\partial\,\mathrm{softmax}((\theta + \tau_f g)/\tau_b)}
            {\partial\theta}\Big)^{\!\top} \nabla f(b).

    **References:** *Improving Discrete Optimisation Via Decoupled Straight-Through
    Gumbel-Softmax*, R. Shah, M. Yan, M. C. Mozer, D. Liu (arXiv:2410.13331).
    """
    options = {
        "temperature_forward": temperature_forward,
        "temperature_backward": temperature_backward,
    }
    return _pathwise("decoupled-st", "decoupled_st", f, logits, key, family, num_samples, options)


def loo(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 2,
) -> tuple[jax.Array, jax.Array]:
    r"""Score function with leave-one-out baselines (unbiased), the ``"loo"`` estimator:

    .. math::

        \hat g = \frac1n\sum_{i=1}^n \Big(f(b_i) - \frac{1}{n-1}\sum_{j\ne i} f(b_j)\Big)
            \nabla_\theta\log p_\theta(b_i),

    ``num_samples >= 2``. It is
    :func:`numpyro_relax.estimators.reinforce` with ``baseline="loo"``.

    **References:** *Buy 4 REINFORCE Samples, Get a Baseline for Free!*, W. Kool,
    H. van Hoof, M. Welling (ICLR 2019 workshop).
    """
    return reinforce(f, logits, key, family=family, num_samples=num_samples, baseline="loo")


def vargrad(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 2,
) -> tuple[jax.Array, jax.Array]:
    r"""VarGrad (unbiased), the ``"vargrad"`` estimator: the gradient of the log-variance loss
    :math:`\frac{1}{2(n-1)}\sum_i (f(b_i) - \bar f)^2` through :math:`\log p_\theta(b_i)`,

    .. math::

        \hat g = \frac{1}{n-1}\sum_{i=1}^n \big(f(b_i) - \bar f\big)\nabla_\theta\log p_\theta(b_i),

    which for one variable is exactly :func:`loo` (Richter et al. point out the
    equivalence); in :class:`~numpyro_relax.infer.TraceDiscrete_ELBO` the two differ, ``"loo"``
    being Rao-Blackwellised over the model's dependency graph and ``"vargrad"`` not.

    **References:** *VarGrad: A Low-Variance Gradient Estimator for Variational Inference*,
    L. Richter, A. Boustati, N. Nüsken, F. J. R. Ruiz, Ö. D. Akyildiz (NeurIPS 2020).
    """
    return loo(f, logits, key, family=family, num_samples=num_samples)


def reinmax(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 1.0,
) -> tuple[jax.Array, jax.Array]:
    r"""ReinMax (**biased**), the ``"reinmax"`` estimator: :math:`f` at an exact sample
    :math:`D \sim \mathrm{softmax}(\theta)`, differentiated through the second-order (Heun)
    surrogate

    .. math::

        \hat g = \Big(2A\big(\tfrac12(\mathrm{softmax}(\theta/\tau) + D)\big) -
            \tfrac12 A\big(\mathrm{softmax}(\theta)\big)\Big)\nabla f(D),
        \qquad A(p) = \mathrm{diag}(p) - pp^\top

    (:func:`numpyro_relax.infer.pathwise.reinmax_surrogate`); bits are the
    two-category case. ``temperature`` :math:`\tau \geq 1` (a ``ValueError`` otherwise). With
    :math:`\tau = 1` its mean equals straight-through's for every :math:`f` linear in :math:`D`.

    **References:** *Bridging Discrete and Backpropagation: Straight-Through and Beyond*,
    L. Liu, C. Dong, X. Liu, B. Yu, J. Gao (NeurIPS 2023, arXiv:2304.08612).
    """
    options = {"temperature": temperature}
    return _pathwise("reinmax", "reinmax", f, logits, key, family, num_samples, options)


def gst(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 1.0,
    gap: ArrayLike = 1.0,
    adaptive: bool = False,
) -> tuple[jax.Array, jax.Array]:
    r"""Gapped Straight-Through (**biased**), the ``"gst"`` estimator: :math:`f` at an exact
    sample :math:`D`, differentiated through the gapped soft sample

    .. math::

        \hat g = \Big(\frac{\partial\,\mathrm{softmax}(\tilde\theta/\tau)}{\partial\theta}
            \Big)^{\!\top}\nabla f(D),

    where
    :math:`\tilde\theta = \theta + \mathrm{sg}(\cdot)` moves the sampled logit to the maximum
    and every other logit at least ``gap`` below it
    (:func:`numpyro_relax.infer.pathwise.gst_surrogate`); ``adaptive=True`` uses the gap
    :math:`-\log(1 - \pi_D)/\pi_D`. No Gumbel noise in the backward pass.

    **References:** *Training Discrete Deep Generative Models via Gapped Straight-Through
    Estimator*, T.-H. Fan, T.-C. Chi, A. I. Rudnicky, P. J. Ramadge (ICML 2022).
    """
    options = {"temperature": temperature, "gap": gap, "adaptive": adaptive}
    return _pathwise("gst", "gst", f, logits, key, family, num_samples, options)


def gumbel_rao(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 1.0,
    num_conditionals: int = 10,
) -> tuple[jax.Array, jax.Array]:
    r"""Gumbel-Rao (**biased**), the ``"gumbel-rao"`` estimator: straight-through
    Gumbel-softmax with the backward pass averaged over ``num_conditionals`` draws of the noise
    given the sample,

    .. math::

        \hat g = \frac1M\sum_{m=1}^M \Big(\frac{\partial\,\mathrm{softmax}((\theta + G_m)/\tau)}
            {\partial\theta}\Big)^{\!\top}\nabla f(D), \qquad G_m \sim G \mid D:

    the mean of :func:`st_gumbel` at the same
    temperature, with lower variance, for one evaluation of :math:`f`.

    **References:** *Rao-Blackwellizing the Straight-Through Gumbel-Softmax Gradient
    Estimator*, M. B. Paulus, C. J. Maddison, A. Krause (ICLR 2021).
    """
    options = {"temperature": temperature, "num_conditionals": num_conditionals}
    return _pathwise("gumbel-rao", "gumbel_rao", f, logits, key, family, num_samples, options)


# --------------------------------------------------------------------------------------------
# pathwise (biased) estimators
# --------------------------------------------------------------------------------------------


def _relaxed_pathwise(
    name: str,
    f: Callable,
    logits: ArrayLike,
    key: jax.Array,
    family: Any,
    num_samples: Any,
    temperature: ArrayLike,
    hard_forward: bool,
) -> tuple[jax.Array, jax.Array]:
    theta, n = _prepare(name, f, logits, family, num_samples)
    _check_positive(name, "temperature", temperature)

    def one(u: jax.Array) -> tuple[jax.Array, jax.Array]:
        def objective(t: jax.Array) -> tuple[jax.Array, jax.Array]:
            z = _perturb(t, u, family)
            soft = _soft(z, temperature, family)
            hard = lax.stop_gradient(_hard(z, family))
            if hard_forward:
                out = f(hard + (soft - lax.stop_gradient(soft)))
                return out, out
            return f(soft), f(hard)

        g, f_hard = jax.grad(objective, has_aux=True)(theta)
        return f_hard, g

    fs, grads = jax.vmap(one)(_noise(key, n, theta))
    return jnp.mean(fs), jnp.mean(grads, axis=0)


def gumbel_softmax(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 0.5,
) -> tuple[jax.Array, jax.Array]:
    r"""Gumbel-softmax / Concrete pathwise estimator (**biased**).

    .. math::

        \hat g = \frac{1}{n}\sum_{i=1}^n \nabla_\theta f\big(\sigma_\lambda(z_i(\theta))\big),

    the reparameterisation gradient of the *relaxed* objective
    :math:`\mathbb{E}[f(\sigma_\lambda(z))]`, not of :math:`\mathbb{E}[f(b)]`: the bias is the
    difference of the two gradients; it vanishes as :math:`\lambda \to 0` only while the
    variance grows like :math:`1/\lambda`. For example at :math:`\theta = 0` with
    :math:`f(b) = (b - 0.499)^2` the true gradient is :math:`5 \times 10^{-4}` while the estimator
    has mean :math:`0.002\,\mathbb{E}[\sigma_\lambda(z)(1 - \sigma_\lambda(z))] / \lambda`.
    ``f`` must accept relaxed inputs (the unit cube / the simplex). The value estimate averages
    :math:`f(b)` at the discrete samples :math:`b = H(z_i)` of the same noise (unbiased).

    :param f: maps one sample (shape of ``logits``) to a scalar, differentiable on the relaxed
        domain.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` (binary Concrete) or ``"categorical"`` (Gumbel-softmax).
    :param num_samples: number of samples.
    :param temperature: :math:`\lambda > 0`.
    :return: ``(value_estimate, grad_estimate)``.

    **References:**

    1. *Categorical Reparameterization with Gumbel-Softmax*, Eric Jang, Shixiang Gu, Ben Poole
       (ICLR 2017)
    2. *The Concrete Distribution: A Continuous Relaxation of Discrete Random Variables*,
       Chris J. Maddison, Andriy Mnih, Yee Whye Teh (ICLR 2017)
    """
    return _relaxed_pathwise(
        "gumbel_softmax", f, logits, key, family, num_samples, temperature, hard_forward=False
    )


def straight_through(
    f: Callable[[jax.Array], jax.Array],
    logits: ArrayLike,
    key: jax.Array,
    *,
    family: Family = "bernoulli",
    num_samples: int = 1,
    temperature: ArrayLike = 0.5,
) -> tuple[jax.Array, jax.Array]:
    r"""Straight-through Gumbel-softmax estimator (**biased**).

    The forward pass evaluates ``f`` at the exact discrete sample :math:`b = H(z)`; the backward
    pass differentiates the relaxed sample:

    .. math::

        \hat g = \frac{1}{n}\sum_{i=1}^n \nabla f(b_i)^\top
            \frac{\partial \sigma_\lambda(z_i(\theta))}{\partial \theta},

    computed as ``f(b + (soft - stop_gradient(soft)))``. Biased for every :math:`\lambda`; at
    :math:`\theta = 0` with :math:`f(b) = (b - 0.499)^2` its mean is
    :math:`\mathbb{E}[2(b - 0.499)\,\sigma_\lambda(z)(1 - \sigma_\lambda(z))] / \lambda` instead
    of :math:`5 \times 10^{-4}`. ``f`` must be differentiable at the discrete points (it is
    given the gradient there). The value estimate averages :math:`f(b)` (unbiased).

    :param f: maps one sample (shape of ``logits``) to a scalar, differentiable.
    :param logits: logits :math:`\theta`.
    :param key: a JAX PRNG key.
    :param family: ``"bernoulli"`` or ``"categorical"``.
    :param num_samples: number of samples.
    :param temperature: temperature :math:`\lambda > 0` of the backward relaxation.
    :return: ``(value_estimate, grad_estimate)``.

    **References:**

    1. *Estimating or Propagating Gradients Through Stochastic Neurons for Conditional
       Computation*, Yoshua Bengio, Nicholas Léonard, Aaron Courville (2013)
    2. *Categorical Reparameterization with Gumbel-Softmax*, Eric Jang, Shixiang Gu, Ben Poole
       (ICLR 2017)
    """
    return _relaxed_pathwise(
        "straight_through", f, logits, key, family, num_samples, temperature, hard_forward=True
    )
