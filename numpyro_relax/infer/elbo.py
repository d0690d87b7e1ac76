"""Presets of :class:`~numpyro_relax.infer.TraceDiscrete_ELBO` kept for their names:
score-function estimators with multi-particle baselines (:class:`TraceLOO_ELBO`,
:class:`VarGrad_ELBO`) and the antithetic DisARM estimator for Bernoulli sites
(:class:`DisARM_ELBO`).

Each is ``TraceDiscrete_ELBO(estimator=..., analytic_kl=False)``: the same code, the same
particles (``random.split(rng_key, num_particles)``, then a model and a guide seed per particle,
as NumPyro's ``Trace_ELBO``), so with the same key the loss value is the usual Monte Carlo
estimate of :math:`-\\mathrm{ELBO}` that ``Trace_ELBO`` computes; the gradient is the
variance-reduced estimator, entering as ``x - stop_gradient(x)``. A guide site may still choose
another estimator with ``infer={"estimator": name}``.
"""

from __future__ import annotations

from numpyro_relax.infer.checks import check_count
from numpyro_relax.infer.discrete_elbo import TraceDiscrete_ELBO

__all__ = ["DisARM_ELBO", "TraceLOO_ELBO", "VarGrad_ELBO"]


_BASELINE = " (the baseline of each particle is built from the others)"


class TraceLOO_ELBO(TraceDiscrete_ELBO):
    r"""ELBO with Rao-Blackwellised score-function terms and leave-one-out baselines.

    The estimator of ``TraceGraph_ELBO`` (each non-reparameterised site :math:`s` is weighted
    by its *downstream cost* :math:`C_s`, the ELBO terms it can influence, found by provenance
    tracking) with the baseline of Kool et al. (2019): with particles :math:`i = 1..N`,

    .. math::

        \widehat{\nabla \mathrm{ELBO}} = \frac{1}{N}\sum_{i=1}^N \Big[
            \nabla_{\mathrm{path}}\big(\log p(x, z^i) - \log q(z^i)\big)
            + \sum_s \Big(C_s^i - \frac{1}{N-1}\sum_{j \neq i} C_s^j\Big)
              \nabla \log q_s(z_s^i) \Big],

    elementwise over the plates of site :math:`s` (each plate element has its own baseline).
    The baseline of particle :math:`i` does not depend on :math:`z^i`, so the estimator is
    unbiased; it typically has much lower variance than ``TraceGraph_ELBO`` with the same
    number of particles, at the same cost. The loss value is the ELBO estimate
    :math:`-\frac{1}{N}\sum_i(\log p(x, z^i) - \log q(z^i))`.

    Scales (``handlers.scale``, subsampling) multiply the costs; the score is the gradient of the
    unscaled log-density of the distribution the site was sampled from, so a scaled site's
    gradient is unbiased. (NumPyro 0.22's ``TraceGraph_ELBO`` multiplies the score by the scale
    as well, which inflates such gradients by the scale factor; with unit scales the two agree in
    expectation.)

    :param num_particles: number of particles :math:`N \geq 2`.
    :param vectorize_particles: ``True`` (``jax.vmap``), ``False`` (``jax.lax.map``) or a callable
        ``(fn, keys) -> outputs``, as in NumPyro's ELBOs.

    **References:**

    1. *Buy 4 REINFORCE Samples, Get a Baseline for Free!*, Wouter Kool, Herke van Hoof,
       Max Welling (ICLR 2019 DeepRLStructPred workshop)
    2. *Gradient Estimation Using Stochastic Computation Graphs*, John Schulman, Nicolas Heess,
       Theophane Weber, Pieter Abbeel (NeurIPS 2015)
    3. *Variational Inference for Monte Carlo Objectives*, Andriy Mnih, Danilo J. Rezende
       (ICML 2016)
    """

    def __init__(self, num_particles: int = 2, vectorize_particles: bool = True) -> None:
        n = check_count(type(self).__name__, "num_particles", num_particles, 2, _BASELINE)
        super().__init__("loo", n, vectorize_particles, analytic_kl=False)


class VarGrad_ELBO(TraceDiscrete_ELBO):
    r"""ELBO whose non-reparameterised sites are fitted with the log-variance loss (VarGrad).

    With particles :math:`z^i \sim q` and log-ratios :math:`w_i = \log q(z^i) - \log p(x, z^i)`,
    Richter et al. (2020) minimise the log-variance loss

    .. math::

        \mathcal{L}_{\mathrm{LV}} = \frac{1}{2(N-1)} \sum_{i=1}^N \big(w_i - \bar w\big)^2,
        \qquad
        \nabla \mathcal{L}_{\mathrm{LV}} = \frac{1}{N-1}\sum_{i=1}^N (w_i - \bar w)\,
            \nabla \log q_{\mathrm{nr}}(z^i),

    where the samples are held fixed and the gradient flows through
    :math:`\log q_{\mathrm{nr}}`, the log-density of the non-reparameterised guide sites. Its
    expectation is :math:`\nabla \mathrm{KL}(q \,\|\, p(\cdot \mid x))` restricted to those
    sites. Here :math:`\mathcal{L}_{\mathrm{LV}}` supplies the gradient of the
    non-reparameterised sites only: model parameters and reparameterised sites receive the usual
    pathwise gradient of the ELBO, so the estimator is unbiased for
    :math:`-\nabla \mathrm{ELBO}` as a whole. The loss *value* is the ELBO estimate
    (:math:`\mathcal{L}_{\mathrm{LV}}` enters as ``x - stop_gradient(x)``).

    The cost of every non-reparameterised site is the whole particle's log-ratio (no
    Rao-Blackwellisation), so the score term equals the leave-one-out estimator of
    :class:`TraceLOO_ELBO` with the whole ELBO as the cost — the equivalence Richter et al. point
    out; when a model has one discrete site that everything depends on, the two classes give the
    same gradient. Prefer :class:`TraceLOO_ELBO` when there are many conditionally independent
    discrete sites (e.g. local latents in a plate).

    :param num_particles: number of particles :math:`N \geq 2`.
    :param vectorize_particles: ``True`` (``jax.vmap``), ``False`` (``jax.lax.map``) or a callable.

    **References:**

    1. *VarGrad: A Low-Variance Gradient Estimator for Variational Inference*, Lorenz Richter,
       Ayman Boustati, Nikolas Nüsken, Francisco J. R. Ruiz, Ömer Deniz Akyildiz (NeurIPS 2020)
    2. *Solving high-dimensional Hamilton-Jacobi-Bellman PDEs using neural networks:
       perspectives from the theory of controlled diffusions and measures on path space*,
       Nikolas Nüsken, Lorenz Richter (2021)
    """

    def __init__(self, num_particles: int = 2, vectorize_particles: bool = True) -> None:
        n = check_count(type(self).__name__, "num_particles", num_particles, 2, _BASELINE)
        super().__init__("vargrad", n, vectorize_particles, analytic_kl=False)


class DisARM_ELBO(TraceDiscrete_ELBO):
    r"""ELBO whose Bernoulli guide sites are fitted with the DisARM antithetic estimator.

    Each of the ``num_pairs`` pairs runs model and guide twice with the same seeds, so every
    site other than the Bernoulli ones (reparameterised noise included) takes the same random
    numbers in both runs, while each Bernoulli guide site with logits :math:`\theta` draws one
    :math:`u \sim U(0, 1)` per element from its own key and takes
    :math:`b = 1[u < \sigma(\theta)]` in the first run and the antithetic
    :math:`\tilde b = 1[1 - u < \sigma(\theta)]` in the second (both exactly
    :math:`\mathrm{Bernoulli}(\sigma(\theta))`; compared in logit space). The first run of pair
    :math:`j` draws what ``Trace_ELBO(num_particles=num_pairs)`` draws for particle :math:`j`
    with the same key. With :math:`f_s` the
    Rao-Blackwellised cost of site :math:`s` (the ELBO terms it can influence, found by
    provenance tracking as in :class:`TraceLOO_ELBO`, per plate element and broadcast over the
    site's event dimensions), the gradient of element :math:`i` of the logits is that of Dong
    et al. (2020),

    .. math::

        \hat g_{s,i} = \tfrac{1}{2}\big(f_s(b) - f_s(\tilde b)\big)\,(-1)^{\tilde b_i}\,
            1[b_i \neq \tilde b_i]\,\sigma(|\theta_i|),

    averaged over pairs, an unbiased estimate of :math:`\partial_{\theta_i}` of the expected
    ELBO (it is ARM with the uniform integrated out given the pair; a bit that agrees in both
    runs contributes nothing). Reparameterised sites and model parameters get the pathwise
    gradient of the ELBO averaged over the :math:`2 \times` ``num_pairs`` runs (the
    non-reparameterised log-densities stopped, whose gradient has mean zero); logits that
    depend on parameters or on reparameterised sites are differentiated through
    :math:`\sum_i \mathrm{stop\_gradient}(\hat g_{s,i})\,\theta_i`. The loss value is the
    ELBO estimate :math:`-\frac{1}{2P}\sum_{r=1}^{2P}(\log p(x, z^r) - \log q(z^r))` over the
    :math:`2P` runs; the DisARM terms enter as ``x - stop_gradient(x)``.

    Requirements, checked when the loss is traced (``ValueError`` naming the site):

    - every non-reparameterised, unobserved guide site is Bernoulli (``BernoulliLogits`` or
      ``BernoulliProbs``, possibly expanded by plates, ``to_event`` or masked), unless it
      chooses another estimator with ``infer={"estimator": "loo"}`` (its baseline then comes
      from the other pairs, so it needs ``num_pairs >= 2``);
    - the logits of a Bernoulli site do not depend on the value of another DisARM site
      (directly or through other sites), as found by the guide's provenance: the two runs would
      then draw the site at different logits, and the joint antithetic coupling is not the
      layer-wise DisARM of the paper, whose estimator for such a site is biased.

    Masked elements (``handlers.mask``) of a guide site get no DisARM gradient, as they get no
    score-function gradient in ``TraceGraph_ELBO``/:class:`TraceLOO_ELBO` (their masked
    log-density is zero). Scales (``handlers.scale``, subsampling) multiply the costs, as in
    :class:`TraceLOO_ELBO`. Mutable state (``numpyro.mutable``) is not supported.

    :param num_pairs: number of antithetic pairs :math:`P \geq 1` (:math:`2P` evaluations of
        model and guide; ``num_particles`` is :math:`P`: a particle is a pair).
    :param vectorize_particles: how the pairs are mapped: ``True`` (``jax.vmap``), ``False``
        (``jax.lax.map``) or a callable ``(fn, keys) -> outputs``, as in NumPyro's ELBOs. The two
        runs of a pair are always vectorised with ``jax.vmap``.

    **References:**

    1. *DisARM: An Antithetic Gradient Estimator for Binary Latent Variables*, Zhe Dong,
       Andriy Mnih, George Tucker (NeurIPS 2020)
    2. *ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks*, Mingzhang Yin,
       Mingyuan Zhou (ICLR 2019)
    """

    def __init__(self, num_pairs: int = 1, vectorize_particles: bool = True) -> None:
        self.num_pairs = check_count(type(self).__name__, "num_pairs", num_pairs, 1)
        super().__init__("disarm", self.num_pairs, vectorize_particles, analytic_kl=False)
