"""Simplex family: InvertibleGaussian samples on the 3-simplex at three temperatures."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import draw_triangle, to_cartesian

from numpyro_relax import InvertibleGaussian

loc, scale = jnp.asarray([0.3, -0.4]), jnp.asarray([0.8, 0.8])
temperatures = (2.0, 1.0, 0.5, 0.1)
# one compiled program, the parameters as its arguments (not constants, which run eagerly)
samples = jax.jit(lambda key, m, s, t: InvertibleGaussian(m, s, t).sample(key, (1500,)))
x_all = np.asarray(samples(jax.random.key(0), loc, scale, jnp.asarray(temperatures)))
fig, axes = plt.subplots(1, len(temperatures), figsize=(11, 3.0), constrained_layout=True)
for i, (ax, tau) in enumerate(zip(axes, temperatures, strict=True)):
    draw_triangle(ax)
    ax.scatter(*to_cartesian(x_all[:, i]), s=2, alpha=0.35, color="C2", rasterized=True)
    ax.set_title(f"$\\tau$ = {tau:g}", fontsize=10)
fig.suptitle(
    "InvertibleGaussian(loc = (0.3, -0.4), scale = 0.8, $\\tau$), $\\delta$ = 1: "
    "1,500 samples per temperature",
    fontsize=10,
)
