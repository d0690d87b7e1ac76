"""Benchmark ratios from ``benchmarks/results/results.json`` (the run shown on the page).

Left: speed-up against each peer (peer time / our time, above 1: we are faster); right: our time
over the noise floor. Medians over interleaved rounds, bars the inter-quartile range.
"""

import json

import matplotlib.pyplot as plt
from _common import BENCHMARK_RESULTS

results = json.loads(BENCHMARK_RESULTS.read_text())
timings = results["timings"]
methods = list(dict.fromkeys(e["method"] for e in timings))
PEERS = {"relaxit": "relaxit", "torch": "PyTorch", "tfp": "TFP on JAX"}
SIZES = {"vae": ("o", "VAE size"), "large": ("s", "large (batch 8192)")}

fig, (ax1, ax2) = plt.subplots(
    1, 2, figsize=(11, 0.3 * len(methods) + 1.4), sharey=True, constrained_layout=True
)
y = {m: i for i, m in enumerate(methods)}
for e in timings:
    marker, _ = SIZES[e["size"]]
    for j, peer in enumerate(PEERS):
        r = e["ratios"].get(peer)
        if r:
            yy = y[e["method"]] + 0.22 * (j - 1) + (0.06 if e["size"] == "large" else -0.06)
            xerr = [[r["median"] - r["q1"]], [r["q3"] - r["median"]]]
            ax1.errorbar(r["median"], yy, xerr=xerr, fmt=marker, color=f"C{j}", ms=4, lw=0.8)
    r = e["ratios"].get("floor")
    if r:
        yy = y[e["method"]] + (0.12 if e["size"] == "large" else -0.12)
        xerr = [[r["median"] - r["q1"]], [r["q3"] - r["median"]]]
        ax2.errorbar(r["median"], yy, xerr=xerr, fmt=marker, color="C3", ms=4, lw=0.8)

ax1.axvline(1, color="0.4", lw=0.8)
ax1.axvline(3, color="C0", lw=0.8, ls="--")
ax1.text(3.1, len(methods) - 0.6, "target:\n3x relaxit", color="C0", fontsize=7, va="bottom")
ax1.set(xscale="log", xlabel="peer time / our time\n(above 1: numpyro-relax is faster)")
names = [m.replace(" (", "\n(", 1) if len(m) > 40 else m for m in methods]
ax1.set_yticks(range(len(methods)), names, fontsize=8)
ax1.invert_yaxis()
handles = [plt.Line2D([], [], color=f"C{j}", marker="o", ls="", label=p) for j, p in
           enumerate(PEERS.values())]  # fmt: skip
handles += [plt.Line2D([], [], color="0.3", marker=m, ls="", label=s) for m, s in SIZES.values()]
ax1.legend(handles=handles, fontsize=7, loc="upper right")
ax2.axvline(2, color="C3", lw=0.8, ls="--")
ax2.text(2.1, len(methods) - 0.6, "target:\nwithin 2x", color="C3", fontsize=7, va="bottom")
ax2.set(xscale="log", xlabel="our time / noise floor\n(1: the cost of drawing the noise alone)")
meta = results["meta"]
fig.suptitle(f"benchmarks of {meta['date']} ({meta['environment']['machine']})", fontsize=9)
