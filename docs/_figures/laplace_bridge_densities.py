"""The Laplace bridge: a Dirichlet and its two logistic-normal bridges on the 3-simplex."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import matplotlib.tri as mtri
import numpy as np
from _common import draw_triangle, to_cartesian, triangle_grid
from numpyro.distributions import Dirichlet

from numpyro_relax import laplace_bridge

grid = triangle_grid(120)
tri = mtri.Triangulation(*to_cartesian(grid))
names = (
    "Dirichlet(2, 3, 6)",
    "laplace_bridge(d): LogisticNormal",
    "laplace_bridge(d, diagonal=True):\nLogisticNormalSoftmax",
)


# One compiled program, the parameters as its arguments (operations on constants inside a jitted
# function would run eagerly, each compiled on its own).
@jax.jit
def densities(concentration, x):
    d = Dirichlet(concentration)
    laws = (d, laplace_bridge(d), laplace_bridge(d, diagonal=True))
    return [jnp.exp(law.log_prob(x)) for law in laws]


dens = dict(
    zip(
        names,
        (np.asarray(v) for v in densities(jnp.asarray([2.0, 3.0, 6.0]), jnp.asarray(grid))),
        strict=True,
    )
)
vmax = max(float(np.percentile(v, 99.5)) for v in dens.values())
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), constrained_layout=True)
for ax, (name, values) in zip(axes, dens.items(), strict=True):
    draw_triangle(ax)
    ax.tricontourf(tri, np.minimum(values, vmax), levels=24, vmin=0, vmax=vmax)
    ax.set_title(name, fontsize=9)
fig.suptitle("densities on the simplex, one colour scale", fontsize=10)
