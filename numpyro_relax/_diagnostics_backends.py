"""The optional libraries behind :mod:`numpyro_relax.diagnostics`: ArviZ 0.x / 1.x, and
NumPyro's PSIS fit (NumPyro >= 0.22) with ArviZ's as the fallback.

Private: the diagnostics call these through the module (``_backends._arviz_major()``), so that
a test can patch one place.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

_ARVIZ_HINT = "pip install 'numpyro-relax[examples]' or pip install arviz"


# --------------------------------------------------------------------------------------------
# ArviZ version handling
# --------------------------------------------------------------------------------------------


def _arviz_major() -> int:
    """Major version of the installed ArviZ (1 when only ``arviz_base`` is installed)."""
    try:
        import arviz
    except ImportError:
        try:
            import arviz_base  # noqa: F401
        except ImportError as err:
            raise ImportError(f"this function needs ArviZ: {_ARVIZ_HINT}") from err
        return 1
    return int(str(arviz.__version__).split(".")[0])


def _from_dict(groups: dict[str, dict[str, np.ndarray]], coords: Any, dims: Any) -> Any:
    if _arviz_major() >= 1:
        # ArviZ 1.x: the converters live in arviz_base and take the groups as one dict.
        from arviz_base import from_dict

        return from_dict(groups, coords=coords, dims=dims)
    import arviz as az

    return az.from_dict(**groups, coords=coords, dims=dims)


@functools.lru_cache(maxsize=8)
def _takes_log_weights(psislw: Callable) -> bool:
    """Whether an ``arviz_stats`` ``psislw`` smooths its input as log weights.

    arviz_stats 1.3 negates its input (it expects a log likelihood, whose negation is the
    PSIS-LOO log ratio); this checks the convention on a fixed probe rather than assuming it.
    Smoothing keeps the order of the draws, so when the input is taken as log weights the
    largest probe value keeps the larger smoothed weight.
    """
    probe = np.log(np.arange(1.0, 101.0))  # distinct values, no ties anywhere in the tail
    smoothed, _ = psislw(probe, r_eff=1.0, axis=-1)
    smoothed = np.asarray(smoothed)
    return bool(smoothed[-1] > smoothed[0])


def _psislw(log_weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed log weights and k-hat of a 1-D array of raw log importance weights.

    When no Pareto tail can be fitted (fewer than 5 tail draws, i.e. fewer than about 25
    draws, or the largest weights all equal), k-hat is ``inf`` and the weights are only
    normalised, as ArviZ 0.x does; arviz_stats raises a ``ValueError`` instead.
    """
    lw = np.asarray(log_weights, dtype=np.float64)
    if _arviz_major() >= 1:
        from arviz_stats.base import array_stats

        sign = 1.0 if _takes_log_weights(array_stats.psislw) else -1.0
        try:
            smoothed, khat = array_stats.psislw(sign * lw, r_eff=1.0, axis=-1)
        except ValueError as err:
            # "All tail values are the same" / "n_draws_tail must be at least 5"
            if "tail" not in str(err):
                raise
            shifted = lw - np.max(lw)
            return shifted - np.log(np.sum(np.exp(shifted))), float("inf")
    else:
        import arviz as az

        smoothed, khat = az.psislw(lw, reff=1.0)
    return np.asarray(smoothed), float(np.asarray(khat))


def _numpyro_psis_khat() -> Callable[[np.ndarray], float] | None:
    """NumPyro's k-hat of raw log weights, or ``None`` before NumPyro 0.22.

    ``numpyro.infer.psis_diagnostic`` (NumPyro >= 0.22) draws its own weights and returns only
    k-hat, whereas :func:`psis_khat` returns the weights too and :func:`pareto_khat` takes
    weights the user already has; both therefore call the function ``psis_diagnostic`` applies
    to its weights, ``numpyro.infer.importance._psis_khat``. It is private, so it is looked up
    defensively: if a NumPyro release moves it, the ArviZ fit (the same algorithm, Vehtari et
    al. 2024, Algorithm 1) takes over. ``tests/test_diagnostics.py`` checks that
    :func:`psis_khat` agrees with the public ``psis_diagnostic`` for the same key.
    """
    try:
        from numpyro.infer.importance import _psis_khat
    except ImportError:
        return None
    return _psis_khat


def _khat(log_weights: np.ndarray) -> float:
    """k-hat of a 1-D array of finite raw log weights: NumPyro's fit, else ArviZ's."""
    numpyro_khat = _numpyro_psis_khat()
    if numpyro_khat is None:
        return _psislw(log_weights)[1]
    with warnings.catch_warnings():
        # NumPyro warns and returns inf when fewer than 5 draws lie in the tail; ``inf`` is the
        # documented result here (as with ArviZ), so the warning would only repeat it.
        warnings.filterwarnings("ignore", message="Not enough tail samples")
        return float(numpyro_khat(np.asarray(log_weights, dtype=np.float64)))
