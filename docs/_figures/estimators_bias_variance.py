"""Gradient estimators on a four-bit toy problem: bias and spread against the exact gradient.

``f(b) = (c . b - 0.5)^2`` with ``b_d ~ Bernoulli(sigmoid(theta_d))``; the exact gradient of
``E[f(b)]`` comes from enumerating the 16 outcomes. Every estimator of
``numpyro_relax.estimators`` is called as a function, ``REPLICATES`` times with independent keys.
"""

import itertools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from numpyro_relax import estimators as est

REPLICATES = 4096
theta = jnp.asarray([-1.0, -0.3, 0.4, 1.2])
c = jnp.asarray([0.6, -0.4, 0.8, 0.3])


def f(b):
    return (jnp.dot(c, b) - 0.5) ** 2


def exact_gradient(theta):
    outcomes = jnp.asarray(list(itertools.product([0.0, 1.0], repeat=theta.size)))

    def expectation(theta):
        log_p = jnp.sum(
            outcomes * jax.nn.log_sigmoid(theta) + (1 - outcomes) * jax.nn.log_sigmoid(-theta), -1
        )
        return jnp.sum(jnp.exp(log_p) * jax.vmap(f)(outcomes))

    return jax.grad(expectation)(theta)


# (label, estimator, options); each is one estimate per call, the LOO baseline needs 2 samples
METHODS = [
    ("REINFORCE", "reinforce", {}),
    ("REINFORCE, LOO (2 samples)", "reinforce", {"baseline": "loo", "num_samples": 2}),
    ("ARM", "arm", {}),
    ("DisARM", "disarm", {}),
    ("REBAR, $\\tau$ = 0.5", "rebar", {"temperature": 0.5}),
    ("Gumbel-softmax, $\\tau$ = 0.5", "gumbel_softmax", {"temperature": 0.5}),
    ("straight-through, $\\tau$ = 0.5", "straight_through", {"temperature": 0.5}),
]
METHODS = [m for m in METHODS if m[1] in est.__all__]
BIASED = ("gumbel_softmax", "straight_through")
TEMPERATURES = np.geomspace(0.1, 2.0, 9)


@jax.jit  # one compiled program for all estimators
def statistics(theta, keys, temperatures):
    g = exact_gradient(theta)
    norm = jnp.linalg.norm(g)

    def summary(grads):  # relative |bias|, its standard error, relative s.d. of one estimate
        bias = grads.mean(0) - g
        var = grads.var(0, ddof=1)
        se = jnp.sqrt(jnp.sum(var / grads.shape[0]))
        return jnp.linalg.norm(bias) / norm, se / norm, jnp.sqrt(jnp.sum(var)) / norm

    out = {}
    for _, name, options in METHODS:
        fn = getattr(est, name)
        grads = jax.vmap(lambda k, fn=fn, o=options: fn(f, theta, k, **o)[1])(keys)
        out[(name, tuple(sorted(options.items())))] = summary(grads)
    sweep = {}
    for name in BIASED:
        if name in est.__all__:
            fn = getattr(est, name)

            def at(t, fn=fn):
                return summary(jax.vmap(lambda k: fn(f, theta, k, temperature=t)[1])(keys))

            sweep[name] = jax.lax.map(at, temperatures)
    return out, sweep


keys = jax.random.split(jax.random.key(0), REPLICATES)
stats, sweep = statistics(theta, keys, jnp.asarray(TEMPERATURES))
stats = {k: np.asarray(v) for k, v in stats.items()}

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
labels = [label for label, _, _ in METHODS]
rows = [stats[(name, tuple(sorted(o.items())))] for _, name, o in METHODS]
y = np.arange(len(rows))
bias, se, sd = (np.array([r[i] for r in rows]) for i in range(3))
ax1.barh(y + 0.2, sd, height=0.4, color="0.7", label="s.d. of one estimate")
ax1.barh(y - 0.2, bias, height=0.4, color="C3", label="|bias| of the mean of all estimates")
# a |bias| below this level is noise: the unbiased estimators' bars must stay under their tick
ax1.plot(2 * se, y - 0.2, "k|", ms=12, mew=1.5, label="noise level of that |bias| (2 s.e.)")
ax1.set_yticks(y, labels)
ax1.invert_yaxis()
ax1.set_xscale("log")
ax1.set_xlabel("relative to the norm of the exact gradient")
ax1.set_title(f"four bits, {REPLICATES} estimates each", fontsize=10)
ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)

for i, (name, (b, _, d)) in enumerate(sweep.items()):
    color = f"C{i}"
    label = name.replace("_", "-")
    ax2.plot(TEMPERATURES, np.asarray(b), "o-", ms=3, color=color, label=f"{label}: |bias|")
    ax2.plot(TEMPERATURES, np.asarray(d), "--", color=color, label=f"{label}: s.d.")
for name, options in (("disarm", {}), ("reinforce", {})):
    key = (name, tuple(sorted(options.items())))
    if key in stats:
        ax2.axhline(stats[key][2], color="0.5", lw=0.8, ls=":")
        ax2.text(TEMPERATURES[0], stats[key][2] * 1.05, f"{name} s.d. (unbiased)", fontsize=7)
ax2.set(xscale="log", yscale="log", xlabel="temperature $\\tau$")
ax2.set_ylabel("relative to the exact gradient's norm")
ax2.set_title("pathwise estimators: bias falls, spread grows as $\\tau \\to 0$", fontsize=10)
ax2.legend(fontsize=7)
