"""Helpers shared by the figure scripts (run by ``.. plot::`` when the docs are built)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The repository root (the figure scripts run with their own folder as working directory).
ROOT = Path(__file__).resolve().parents[2]
#: The benchmark results that docs/benchmarks.md was generated from (absent in some checkouts).
BENCHMARK_RESULTS = ROOT / "benchmarks" / "results" / "results.json"

SQRT3_2 = np.sqrt(3) / 2


def to_cartesian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric points of the 3-simplex -> the plane: e1 (0, 0), e2 (1, 0), e3 (1/2, sqrt3/2)."""
    x = np.asarray(x)
    return x[..., 1] + 0.5 * x[..., 2], SQRT3_2 * x[..., 2]


def triangle_grid(n: int) -> np.ndarray:
    """Barycentric lattice points strictly inside the 3-simplex (step 1/n, shifted inwards)."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = i + j < n - 1
    a = (i[keep] + 1 / 3) / n
    b = (j[keep] + 1 / 3) / n
    return np.stack([a, b, 1 - a - b], axis=-1)


def draw_triangle(ax, labels=("$x_1$", "$x_2$", "$x_3$")) -> None:
    """The triangle's outline and its vertex labels, no axes."""
    ax.plot([0, 1, 0.5, 0], [0, 0, SQRT3_2, 0], color="0.3", lw=0.8)
    corners = ((-0.03, -0.04), (1.03, -0.04), (0.5, SQRT3_2 + 0.04))
    for (vx, vy), label, ha in zip(corners, labels, ("right", "left", "center"), strict=True):
        ax.text(vx, vy, label, ha=ha, va="center", fontsize=9)
    ax.set_xlim(-0.1, 1.1)
    ax.set_ylim(-0.1, SQRT3_2 + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
