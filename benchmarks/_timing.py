"""Timing helpers: interleaved repeats, per-call times, medians and inter-quartile ranges.

Every implementation of one task is timed in the same loop, repeat after repeat, so that drift
of the machine (frequency scaling, other processes) hits all of them alike; ratios are formed
per repeat and then summarised, which cancels most of that drift.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence

import numpy as np


def summarize(xs: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and inter-quartile range of a sample (``nan`` when empty)."""
    a = np.asarray(xs, dtype=float)
    if a.size == 0:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "iqr": math.nan, "n": 0}
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "iqr": float(q3 - q1),
        "n": int(a.size),
    }


def time_calls(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """``(fastest, mean)`` seconds per call of ``fn`` over ``n`` calls, garbage collector off.

    Each call is timed on its own; the fastest call of a block is the estimate least disturbed
    by other processes on a shared machine, the mean is kept alongside it.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    best, total = math.inf, 0.0
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            total += dt
            best = min(best, dt)
        return best, total / n
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(fn: Callable[[], object], min_time: float, warmup: int = 1) -> int:
    """Warm ``fn`` up (after its first, compiling call), then return how many calls make one measurement last ``min_time``."""
    for _ in range(warmup):
        fn()
    t = time_calls(fn, 1)[1]
    if t < min_time / 10:  # a single call is too short to trust: refine on a few
        t = time_calls(fn, max(3, int(min_time / 10 / max(t, 1e-9))))[1]
    return max(1, int(math.ceil(min_time / max(t, 1e-9))))


def interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, min_time: float
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-call times of every function, ``repeats`` rounds, each round visiting all of them.

    Returns ``(fastest, mean)``: per round and function, the fastest call of the round's block
    and the mean call. The order within a round rotates so that no implementation always runs
    first (or right after the most expensive one).
    """
    counts = {name: calibrate(fn, min_time) for name, fn in fns.items()}
    names = list(fns)
    fastest: dict[str, list[float]] = {name: [] for name in names}
    mean: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            best, avg = time_calls(fns[name], counts[name])
            fastest[name].append(best)
            mean[name].append(avg)
    return fastest, mean


def ratio_stats(num: Sequence[float], den: Sequence[float]) -> dict[str, float]:
    """Summary of the per-repeat ratios ``num[r] / den[r]``."""
    return summarize([a / b for a, b in zip(num, den, strict=True)])
