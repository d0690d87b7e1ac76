"""Tracing helpers shared by the diagnostics and the ELBOs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
from numpyro import handlers


def guide_and_replayed_model(
    model: Callable, guide: Callable, params: Mapping, key: jax.Array, args: tuple, kwargs: dict
) -> tuple[dict, dict]:
    """One trace of the guide and of the model replayed against it, ``params`` substituted.

    Unlike ``numpyro.infer.util.get_importance_trace`` no log-density is evaluated, so values a
    site's distribution does not support (a relaxed guide value at a discrete model site) pass.
    """
    k_guide, k_model = jax.random.split(key)
    guide_tr = handlers.trace(
        handlers.substitute(handlers.seed(guide, k_guide), data=params)
    ).get_trace(*args, **kwargs)
    model_tr = handlers.trace(
        handlers.substitute(
            handlers.replay(handlers.seed(model, k_model), trace=guide_tr), data=params
        )
    ).get_trace(*args, **kwargs)
    return guide_tr, model_tr
