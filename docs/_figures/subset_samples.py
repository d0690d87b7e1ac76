"""Subsets: relaxed 2-subsets of 8 items (GumbelSoftmaxTopK) at three temperatures."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from numpyro_relax import GumbelSoftmaxTopK

logits = jnp.asarray([1.5, 1.0, 0.5, 0.0, 0.0, -0.5, -1.0, -1.5])
temperatures = (1.0, 0.3, 0.05)
# one compiled program, the parameters as its arguments (not constants, which run eagerly)
samples = jax.jit(lambda key, t, l: GumbelSoftmaxTopK(2, t, logits=l).sample(key, (12,)))
z_all = np.asarray(samples(jax.random.key(0), jnp.asarray(temperatures), logits))
# z_all: (12 samples, temperature, items)
fig, axes = plt.subplots(1, len(temperatures), figsize=(10, 2.9), constrained_layout=True)
for i, (ax, tau) in enumerate(zip(axes, temperatures, strict=True)):
    z = z_all[:, i]
    image = ax.imshow(z, vmin=0, vmax=1, cmap="Greys", aspect="auto")
    ax.set(xlabel="item", ylabel="sample", title=f"$\\tau$ = {tau:g}")
    ax.set_xticks(range(logits.size))
fig.colorbar(image, ax=axes, shrink=0.8, label="entry (each row sums to k = 2)")
