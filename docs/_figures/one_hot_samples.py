"""One-hot family: RelaxedOneHotCategorical samples on the simplex at three temperatures."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from _common import draw_triangle, to_cartesian

from numpyro_relax import RelaxedOneHotCategorical

probs = jnp.asarray([0.2, 0.3, 0.5])
temperatures = (5.0, 1.0, 0.5, 0.1)  # batch (4, 1): one row of 3 logits per temperature
samples = jax.jit(  # one compiled program (eager JAX would compile each operation)
    lambda key: RelaxedOneHotCategorical(jnp.asarray(temperatures), probs=probs).sample(
        key, (1500,)
    )
)
x_all = np.asarray(samples(jax.random.key(0)))  # (1500, temperature, 3)
fig, axes = plt.subplots(1, len(temperatures), figsize=(11, 3.0), constrained_layout=True)
for i, (ax, tau) in enumerate(zip(axes, temperatures, strict=True)):
    x = x_all[:, i]
    draw_triangle(ax)
    ax.scatter(*to_cartesian(x), s=2, alpha=0.35, color="C0", rasterized=True)
    ax.set_title(f"$\\tau$ = {tau:g}", fontsize=10)
fig.suptitle(
    "RelaxedOneHotCategorical(probs = (0.2, 0.3, 0.5)): 1,500 samples per temperature", fontsize=10
)
