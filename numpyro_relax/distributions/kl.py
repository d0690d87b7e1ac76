"""Exact KL divergences, registered for concrete pairs with ``kl_divergence.register``.

Imported by :mod:`numpyro_relax.distributions` for its side effect. Only pairs with an exact
closed form are registered; the straight-through classes count as the discrete law their forward
value follows (their ``log_prob`` is that law's pmf), so their KL to a one-hot categorical is exact.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from numpyro.distributions.discrete import CategoricalLogits, CategoricalProbs
from numpyro.distributions.kl import kl_divergence

from numpyro_relax.distributions.categorical import (
    DecoupledStraightThroughGumbelSoftmax,
    GeneralizedGumbelSoftmax,
    OneHotCategorical,
    RelaxedOneHotCategoricalStraightThrough,
)
from numpyro_relax.distributions.util import all_concrete


def categorical_kl(logits_p: jax.Array, logits_q: jax.Array) -> jax.Array:
    r""":math:`\sum_k p_k (\log p_k - \log q_k)` from logits, over the last axis."""
    logp = jax.nn.log_softmax(logits_p, axis=-1)
    logq = jax.nn.log_softmax(logits_q, axis=-1)
    # a category without mass under p (a -inf logit, a masked category) adds 0, whatever q
    # gives it: the where keeps -inf - -inf and 0 * -inf out of the value and the gradient
    log_ratio = jnp.where(jnp.isneginf(logp), 0.0, logp - logq)
    return jnp.sum(jnp.exp(logp) * log_ratio, axis=-1)


def _register_categorical_pairs() -> None:
    """NumPyro registers ``(CategoricalProbs, CategoricalProbs)`` only; the pairs with logits
    (the form a guide usually has) are the same KL."""
    pairs = [
        (CategoricalLogits, CategoricalLogits),
        (CategoricalLogits, CategoricalProbs),
        (CategoricalProbs, CategoricalLogits),
    ]
    for p_cls, q_cls in pairs:

        @kl_divergence.register(p_cls, q_cls)
        def _kl(p, q):
            return categorical_kl(p.logits, q.logits)


_register_categorical_pairs()


@kl_divergence.register(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p, q):
    return categorical_kl(p.logits, q.logits)


@kl_divergence.register(RelaxedOneHotCategoricalStraightThrough, OneHotCategorical)
def _kl_st_onehot(p, q):
    return categorical_kl(p.logits, q.logits)


@kl_divergence.register(DecoupledStraightThroughGumbelSoftmax, OneHotCategorical)
def _kl_decoupled_onehot(p, q):
    return categorical_kl(p.forward_logits, q.logits)


@kl_divergence.register(GeneralizedGumbelSoftmax, GeneralizedGumbelSoftmax)
def _kl_gengs_gengs(p, q):
    """KL between the two discrete laws on the same ``values`` (checked when concrete)."""
    if p.values.shape[-1] != q.values.shape[-1]:
        raise ValueError("kl_divergence(GeneralizedGumbelSoftmax, ...): `values` differ in size.")
    if all_concrete(p.values == q.values) is False:
        raise ValueError("kl_divergence(GeneralizedGumbelSoftmax, ...): `values` differ.")
    return categorical_kl(p.logits, q.logits)
