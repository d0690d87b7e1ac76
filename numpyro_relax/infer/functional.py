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
from jax import random
from jax.typing import ArrayLike

from numpyro_relax.infer.checks import Family, _prepare
from numpyro_relax.infer.core import ESTIMATORS, resolve_options

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
    exact sample :math:`b` and differentiated through
    :math:`b + (\pi - \mathrm{sg}(\pi))`, :math:`\pi = \sigma(\theta)` (bits) or
    :math:`\mathrm{softmax}(\theta)` (one-hot), i.e.
    :math:`\hat g = \nabla f(b)^\top \partial\pi/\partial\theta`.

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
    :math:`b = H(\theta + g)`, backward the Concrete sample
    :math:`\mathrm{softmax}((\theta + g)/\lambda)` (logistic noise and a sigmoid for bits).
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
    trades exploration for bias in the value too), backward
    :math:`\mathrm{softmax}((\theta + \tau_f g)/\tau_b)`.

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
    :math:`\hat g = \frac1n\sum_i \big(f(b_i) - \frac{1}{n-1}\sum_{j\ne i} f(b_j)\big)
    \nabla_\theta\log p_\theta(b_i)`; ``num_samples >= 2``. It is
    :func:`numpyro_relax.estimators.reinforce` with ``baseline="loo"``.

    **References:** *Buy 4 REINFORCE Samples, Get a Baseline for Free!*, W. Kool,
    H. van Hoof, M. Welling (ICLR 2019 workshop).
    """
    from numpyro_relax.estimators import reinforce

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
    :math:`\frac{1}{2(n-1)}\sum_i (f(b_i) - \bar f)^2` through
    :math:`\log p_\theta(b_i)`, :math:`\frac{1}{n-1}\sum_i (f(b_i) - \bar f)\nabla\log
    p_\theta(b_i)`, which for one variable is exactly :func:`loo` (Richter et al. point out the
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
    surrogate :math:`\hat g = \big(2A(\tfrac12(\mathrm{softmax}(\theta/\tau) + D)) -
    \tfrac12 A(\mathrm{softmax}(\theta))\big)\nabla f(D)`, :math:`A(p) = \mathrm{diag}(p) -
    pp^\top` (:func:`numpyro_relax.infer.pathwise.reinmax_surrogate`); bits are the
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
    sample :math:`D`, differentiated through :math:`\mathrm{softmax}(\tilde\theta/\tau)`, where
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
    given the sample, :math:`\frac1M\sum_m \nabla_\theta\mathrm{softmax}((\theta + G_m)/\tau)
    ^\top\nabla f(D)`, :math:`G_m \sim G \mid D`: the mean of :func:`st_gumbel` at the same
    temperature, with lower variance, for one evaluation of :math:`f`.

    **References:** *Rao-Blackwellizing the Straight-Through Gumbel-Softmax Gradient
    Estimator*, M. B. Paulus, C. J. Maddison, A. Krause (ICLR 2021).
    """
    options = {"temperature": temperature, "num_conditionals": num_conditionals}
    return _pathwise("gumbel-rao", "gumbel_rao", f, logits, key, family, num_samples, options)
