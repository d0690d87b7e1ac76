"""Binary family: the binary Concrete across temperatures, and the atoms of the two gates."""

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from numpyro.distributions import TransformedDistribution
from numpyro.distributions.transforms import SigmoidTransform

from numpyro_relax import GaussianRelaxedBernoulli, HardConcrete, LogitRelaxedBernoulli

x = np.linspace(1e-3, 1 - 1e-3, 600)
# the atoms at 0 and 1 (log-mass there), then the density inside
points = jnp.asarray(np.concatenate([[0.0, 1.0], x]))
fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), constrained_layout=True)

temperatures = np.array([2.0, 1.0, 2 / 3, 0.3])
log_alpha = np.array([-1.0, 0.0, 1.5])
mu = np.array([0.2, 0.5, 0.9])


# One compiled program, the parameters as its arguments (operations on constants inside a jitted
# function would run eagerly, each compiled on its own).
@jax.jit
def densities(points, tau, log_alpha, mu):
    # binary Concrete = sigmoid of a LogitRelaxedBernoulli sample, P(1) = 0.7; a batch of taus
    concrete = TransformedDistribution(LogitRelaxedBernoulli(tau, probs=0.7), SigmoidTransform())
    hard = HardConcrete(log_alpha)
    stg = GaussianRelaxedBernoulli(mu, 0.5)
    return [
        jnp.exp(d.log_prob(v)) for d, v in ((concrete, points[2:]), (hard, points), (stg, points))
    ]


params = (jnp.asarray(v, jnp.float32)[:, None] for v in (temperatures, log_alpha, mu))
concrete_density, hard_density, stg_density = (np.asarray(v) for v in densities(points, *params))
ax = axes[0]
for tau, row in zip(temperatures, concrete_density, strict=True):
    ax.plot(x, row, label=f"$\\tau$ = {tau:.2g}")
ax.set(ylim=(0, 4), xlabel="$z$", ylabel="density", title="binary Concrete, $p = 0.7$")
ax.legend(fontsize=8, loc="upper center")


def mixed(ax, p, labels, title):
    """Density inside (0, 1) as lines; the atoms at 0 and 1 as bars (their mass, right axis)."""
    atoms = ax.twinx()
    for i, (row, label) in enumerate(zip(p, labels, strict=True)):
        color, offset = f"C{i}", (i - 1) * 0.025
        ax.plot(x, row[2:], color=color, label=label)
        atoms.vlines([offset, 1 + offset], 0, row[:2], color=color, lw=3, alpha=0.7)
        atoms.plot([offset, 1 + offset], row[:2], "o", color=color, ms=4)
    atoms.set_ylim(0, 1)
    atoms.set_ylabel("$P(z=0)$, $P(z=1)$ (bars)")
    ax.set(xlim=(-0.08, 1.08), ylim=(0, 3), xlabel="$z$", ylabel="density inside (lines)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center")


mixed(
    axes[1],
    hard_density,
    [f"$\\log\\alpha$ = {a:g}" for a in log_alpha],
    "HardConcrete ($\\beta = 2/3$)",
)
mixed(
    axes[2],
    stg_density,
    [f"$\\mu$ = {m:g}" for m in mu],
    "GaussianRelaxedBernoulli ($\\sigma = 0.5$)",
)
