"""Markdown report (docs/benchmarks.md) generated from the results dictionary."""

from __future__ import annotations

import math

SPEEDUP_TARGET = 3.0  # peer time / our time, relaxit on CPU
FLOOR_TARGET = 2.0  # our time / noise-floor time

PEER_TITLES = {
    "relaxit": "relaxit (PyTorch, CPU, eager)",
    "torch": "torch.distributions / pyro.distributions (PyTorch, CPU, eager)",
    "tfp": "TensorFlow Probability on JAX (jit)",
}

_LAYOUT = (
    "The arrays' last axis is the K = 10 categories: XLA:CPU vectorises along it (10 = 8 + 2 "
    "lanes) and runs elementwise fusions 3-7x slower than on the same data flattened, and "
    "JAX's default threefry generator is 3-5x slower at (1024, 20, 10) than at (1024, 200)."
)
_RNG = (
    "JAX's default random generator (threefry, `jax_threefry_partitionable=True`) costs several "
    "times PyTorch's on CPU, so the noise floor alone is a large share of PyTorch's whole step; "
    "the fast-RNG column shows the same step with `jax_threefry_partitionable=False`."
)

#: why a row misses a target, from ``benchmarks/_profile.py``; keyed by method name
PROFILE_NOTES: dict[str, str] = {
    "RelaxedOneHotCategorical": (
        "on top of the Gumbel noise, a log_softmax over K, the Concrete log density (a "
        "logsumexp) and their gradients; about 2x the floor is the cost of those passes. " + _LAYOUT
    ),
    "ExpRelaxedOneHotCategorical": "as RelaxedOneHotCategorical. " + _LAYOUT,
    "RelaxedOneHotCategoricalStraightThrough": (
        "argmax + one-hot and the soft sample on top of the noise. " + _LAYOUT
    ),
    "DecoupledStraightThroughGumbelSoftmax": (
        "2.5-6x relaxit at the VAE size across runs on this shared machine; at batch 8192 the "
        "Gumbel noise grows to most of our step. " + _LAYOUT + " " + _RNG
    ),
    "GeneralizedGumbelSoftmax": (
        "as the decoupled straight-through row: the Gumbel noise dominates at batch 8192. "
        + _LAYOUT
    ),
    "GumbelSoftmaxTopK": (
        "the relaxed top-k is k (unrolled) softmax steps, each with a `log1mexp` and their "
        "gradients, and the exact subset `log_prob` forms the 2^k - 1 = 7 shared denominators "
        "and sums over the k! = 6 orderings: about 7x the Gumbel noise, all element-wise or "
        "tiny reductions over the (..., 10) layout. relaxit does less work: its `log_prob` is an "
        "element-wise BCE (not the subset probability). (Before 2026-11-22 this row was 0.8x "
        "relaxit: `log1mexp`'s double-guarded `where` and a cumulative logsumexp per ordering "
        "cost XLA:CPU 3-5x; both were rewritten.)"
    ),
    "StraightThroughBernoulli": (
        "the whole step is ~3 ms of element-wise work on 204,800 bits: the noise (the floor) plus "
        "the Bernoulli log-pmf (one exp and one log1p, exact custom gradient) and its gradient. On one core PyTorch's eager "
        "kernels are about as fast per element as XLA's fused loop, so only relaxit's dispatch "
        "overhead is there to win, and at batch 8192 the threefry noise alone costs over a third "
        "of relaxit's whole step. " + _RNG
    ),
    "StochasticTimesSmooth": (
        "as StraightThroughBernoulli: a few element-wise ops per bit, where PyTorch's eager "
        "kernels match XLA's per element; `log_prob` adds log1mexp and log_sigmoid and their "
        "gradients (4-5x the floor). " + _RNG
    ),
    "RelaxedBernoulliStraightThrough": (
        "on top of the logistic noise, the relaxed sample (a sigmoid) and the Bernoulli log-pmf "
        "(one exp and one log1p per element) with their gradients: ~1.5-2x the floor."
    ),
    "LogitRelaxedBernoulli": (
        "the logistic log density (one exp and one log1p per element) and its gradient; TFP "
        "does the same work at about the same speed (TFP / ours 0.75-1.0)."
    ),
    "binary Concrete (RelaxedBernoulli)": (
        "the density on (0, 1) is the logit-space density plus the sigmoid Jacobian (the logit of "
        "the value, two logistic log-densities), forward and backward. TFP's RelaxedBernoulli "
        "spends one softplus less and is a little faster (TFP / ours 0.7-0.9)."
    ),
    "GaussianRelaxedBernoulli": (
        "the exact mixed density evaluates log Phi at both atoms for every element "
        "(`log_ndtr`, an erfc-based series, forward and backward), about 3x the cost of the "
        "normal noise, whether or not a sample sits on an atom. relaxit's log(cdf) is cheaper "
        "(and underflows to -inf in the tails). " + _RNG
    ),
    "HardConcrete": (
        "the interior density has six log/log_sigmoid terms per element and the two atom "
        "log-masses two more, all with gradients (~6x the floor); relaxit evaluates powers of s "
        "instead of logs (cheaper, not stable). About 3-4x relaxit at the VAE size, 2x at batch "
        "8192 where the threefry noise weighs more."
    ),
    "CorrelatedRelaxedBernoulli": (
        "the exact copula density costs, per step, a triangular solve of the 200 x 200 "
        "Cholesky factor against all 1024 samples (forward and backward) and log Phi at +-v for "
        "every gate, about 15x the normal noise; relaxit's `log_prob` is a Normal(pi, tau) "
        "density that needs neither (and is not the law of its samples). Before commit dd960c1 "
        "the shared correlation was broadcast to the batch (1024 Cholesky factorisations and "
        "1024 separate solves): 475-865 ms per step, now ~20 ms."
    ),
    "LogitNormal": (
        "TransformedDistribution(Normal, Sigmoid): the Normal log density, the inverse sigmoid "
        "of the value and the log-Jacobian (two log_sigmoid) per element, with gradients; TFP's "
        "LogitNormal does the same work at about the same speed (TFP / ours 0.8-1.2)."
    ),
    "InvertibleGaussian": (
        "the noise is the cost: the floor (JAX's normal generator, an inverse erf of threefry "
        "uniforms, on the (..., 9) layout) is ~85% of our step, and relaxit draws its normals "
        "with PyTorch's much cheaper generator. " + _RNG
    ),
    "LogisticNormalSoftmax": (
        "the step is the normal noise plus one log_softmax; ours is at the floor (ours / floor "
        "< 1), and slower than relaxit only because JAX's normal generator on the (..., 10) "
        "layout is. " + _RNG
    ),
    "LogisticNormal": (
        "per sample a 9x9 triangular matrix-vector product and, for the density, a triangular "
        "solve, with `scale_tril` broadcast to all 20,480 batch elements (20,480 small solves "
        "rather than one solve with many right-hand sides). No peer has this class."
    ),
    "laplace_bridge (Dirichlet → LogisticNormalSoftmax) + sample": (
        "the diagonal bridge is a few element-wise passes over the concentration, so the step "
        "is the normal noise (ours / floor ~1.3-1.7); relaxit is as fast because PyTorch's normal "
        "generator is several times cheaper than JAX's threefry one (with the fast RNG ours is "
        "~3x relaxit). (Before 2026-11-22 the diagonal path built the K x K covariance per batch "
        "element: 0.2x relaxit.)"
    ),
}


def _ms(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    ms = x * 1e3
    return f"{ms:.3g}" if ms >= 1 else f"{ms:.2g}"


def _ratio(r: dict) -> str:
    return f"{r['median']:.2f} [{r['q1']:.2f}, {r['q3']:.2f}]"


def _rows(results: dict, peer: str) -> list[dict]:
    return [e for e in results["timings"] if peer in e.get("ratios", {})]


def _peer_table(results: dict, peer: str, target: float | None) -> list[str]:
    rows = _rows(results, peer)
    if not rows:
        return ["_No method exists on both sides in this run._", ""]
    fast = any(f"{peer}_fast_rng" in e["ratios"] for e in rows)
    head = "| method | size | shape | ours ms | peer ms | speedup: peer / ours, median [IQR] |"
    sep = "|---|---|---|---:|---:|---:|"
    if target is not None:
        head += f" ≥ {target:g}x |"
        sep += ":-:|"
    if fast:
        head += " speedup, fast RNG ¹ |"
        sep += "---:|"
    out = [head, sep]
    for e in rows:
        r = e["ratios"][peer]
        line = (
            f"| {e['method']} | {e['size']} | {'x'.join(map(str, e['shape']))} | "
            f"{_ms(e['times']['ours']['median'])} | {_ms(e['times'][peer]['median'])} | "
            f"{_ratio(r)} |"
        )
        if target is not None:
            line += f" {'yes' if r['median'] >= target else '**no**'} |"
        if fast:
            rf = e["ratios"].get(f"{peer}_fast_rng")
            line += f" {_ratio(rf) if rf else '–'} |"
        out.append(line)
    if fast:
        out += [
            "",
            "¹ Ours under `jax.config.update('jax_threefry_partitionable', False)`, a one-line "
            "user setting that makes JAX's random bits several times cheaper on CPU (it changes "
            "the random streams, not their laws).",
        ]
    return out + [""]


def _summary_table(results: dict) -> list[str]:
    """One line per method: median ratios against every peer and the floor, per size."""
    sizes = list(dict.fromkeys(e["size"] for e in results["timings"]))
    peers = ("relaxit", "relaxit_fast_rng", "torch", "torch_fast_rng", "tfp", "floor")
    cols = [(p, z) for p in peers for z in sizes]
    cols = [
        c
        for c in cols
        if any(c[0] in e["ratios"] and e["size"] == c[1] for e in results["timings"])
    ]
    names = {
        "relaxit": "relaxit",
        "relaxit_fast_rng": "relaxit, fast RNG",
        "torch": "PyTorch",
        "torch_fast_rng": "PyTorch, fast RNG",
        "tfp": "TFP",
        "floor": "ours / floor",
    }
    head = "| method | " + " | ".join(f"{names[p]} ({z})" for p, z in cols) + " |"
    out = [head, "|---|" + "---:|" * len(cols)]
    by_method: dict[str, dict] = {}
    for e in results["timings"]:
        by_method.setdefault(e["method"], {})[e["size"]] = e["ratios"]
    for method, per_size in by_method.items():
        cells = []
        for p, z in cols:
            r = per_size.get(z, {}).get(p)
            if r is None:
                cells.append("–")
                continue
            v = r["median"]
            miss = (p == "relaxit" and v < SPEEDUP_TARGET) or (p == "floor" and v > FLOOR_TARGET)
            cells.append(f"**{v:.2f}**" if miss else f"{v:.2f}")
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    return out + [""]


def _floor_table(results: dict) -> list[str]:
    out = [
        "| method | size | noise | ours ms | floor ms | ours / floor, median [IQR] | "
        f"≤ {FLOOR_TARGET:g}x | fast RNG: ours / floor |",
        "|---|---|---|---:|---:|---:|:-:|---:|",
    ]
    for e in results["timings"]:
        if "floor" not in e.get("ratios", {}):
            continue
        r = e["ratios"]["floor"]
        rf = e["ratios"].get("floor_fast_rng")
        ok = r["median"] <= FLOOR_TARGET
        out.append(
            f"| {e['method']} | {e['size']} | {e['noise']} | {_ms(e['times']['ours']['median'])} "
            f"| {_ms(e['times']['floor']['median'])} | {_ratio(r)} | "
            f"{'yes' if ok else '**no**'} | {_ratio(rf) if rf else '–'} |"
        )
    return out + [""]


def _misses(results: dict) -> dict[str, list[str]]:
    miss: dict[str, list[str]] = {}
    for e in results["timings"]:
        rs = e.get("ratios", {})
        if "relaxit" in rs and rs["relaxit"]["median"] < SPEEDUP_TARGET:
            miss.setdefault(e["method"], []).append(
                f"{rs['relaxit']['median']:.2f}x relaxit at {e['size']}"
            )
        if "floor" in rs and rs["floor"]["median"] > FLOOR_TARGET:
            miss.setdefault(e["method"], []).append(
                f"{rs['floor']['median']:.2f}x the noise floor at {e['size']}"
            )
    return miss


def _quality_tables(q: dict) -> list[str]:
    out = []
    titles = {
        "bits": "Four bits, $f(b) = (c^\\top b - 0.5)^2$",
        "cats": "Two 3-category variables, $f(z) = (\\sum_{vk} C_{vk} z_{vk} - 0.6)^2$",
    }
    for problem, p in q["problems"].items():
        out += [
            f"### {titles.get(problem, problem)}",
            "",
            f"$\\theta$ = `{_round(p['theta'], 4)}`, $c$ = `{_round(p['c'], 4)}`, exact "
            f"gradient `{_round(p['exact_gradient'], 5)}`.",
            "",
            "| method | kind | relative bias | bias significant (z > 4) | relative s.d. (1 estimate) "
            f"| µs / estimate | relative RMSE at {q['budget_s'] * 1e3:g} ms |",
            "|---|---|---:|:-:|---:|---:|---:|",
        ]
        for r in sorted(p["rows"], key=lambda r: r["rel_rmse_at_budget"]):
            out.append(
                f"| {r['method']} | {r['kind']} | {r['rel_bias']:.3f} | "
                f"{'yes' if r['bias_significant'] else 'no'} | {r['rel_std']:.2f} | "
                f"{r['time_per_estimate_s'] * 1e6:.3g} | {r['rel_rmse_at_budget']:.3f} |"
            )
        out.append("")
    if q.get("skipped"):
        out += ["Skipped (not in this checkout):", ""]
        out += [f"- {s['problem']}: {s['method']} — {s['why']}" for s in q["skipped"]]
        out.append("")
    return out


def _round(x, nd: int):
    if isinstance(x, list):
        return [_round(y, nd) for y in x]
    return round(float(x), nd)


def render(results: dict) -> str:
    meta = results["meta"]
    out = [
        "# Benchmarks",
        "",
        "```{note}",
        "This page is generated by `benchmarks/run.py` (`make bench`); do not edit it by hand.",
        f"Run: {meta['date']}, mode `{meta['mode']}`, {meta['repeats']} interleaved repeats of "
        f"at least {meta['min_time_s'] * 1e3:g} ms each per implementation.",
        "```",
        "",
        "Each row times one training-style step of a method: draw a relaxed sample of the full "
        "shape, evaluate its log density, form `sum(w * sample) + sum(log_prob)` and take the "
        "gradient with respect to the distribution parameters. All implementations of a row use "
        "the same shapes and parameter values, on the same machine, in the same process, timed "
        "in interleaved rounds; ratios are formed per round and summarised by their median and "
        "inter-quartile range [Q1, Q3]. numpyro_relax and TFP run under `jax.jit` with "
        "`block_until_ready` after every call, compile time excluded; PyTorch runs eagerly "
        "with `torch.autograd.grad`. Sizes: `vae` is batch 1024 × 200 bits or "
        "1024 × 20 variables × 10 categories; `large` is batch 8192 of the same.",
        "",
        "The **noise floor** is the same step with the relaxation replaced by drawing its noise "
        "alone (`jax.random.gumbel`, `logistic`, `uniform` or `normal` in the shape of the main "
        "parameter) and a trivial reduction `sum(param * noise)` with its gradient: no "
        "implementation of the method on JAX can be cheaper.",
        "",
        "## Environment",
        "",
        "| | |",
        "|---|---|",
    ]
    for k, v in meta["environment"].items():
        out.append(f"| {k} | {v} |")
    out += [
        "",
        "## Summary",
        "",
        "Median ratios. Against a peer: peer time / our time (above 1: we are faster). Against "
        f"the floor: our time / floor time. Bold: misses a target (at least {SPEEDUP_TARGET:g}x "
        f"relaxit; within {FLOOR_TARGET:g}x the floor). *Fast RNG*: ours under "
        "`jax_threefry_partitionable=False` (VAE size only). Details, spreads and notes below.",
        "",
    ]
    out += _summary_table(results)
    prev = meta.get("previous_run")
    if prev:
        out += [
            f"**Run-to-run spread.** Against the previous run ({prev['date']}), the "
            f"{prev['ratios_compared']} median ratios moved by {prev['median_change']:.0%} "
            f"(median over ratios) and by up to {prev['p90_change']:.0%} (90th percentile): "
            "on a shared machine that is wider than the within-run IQR, so a row within that "
            "distance of its target can land on either side of it.",
            "",
        ]
    out += ["## Against relaxit", ""]
    out += [
        f"Target: at least {SPEEDUP_TARGET:g}x relaxit's throughput for every shared method. "
        "Method names were mapped by reading relaxit's source; see the notes below for what "
        "each side computes.",
        "",
    ]
    out += _peer_table(results, "relaxit", SPEEDUP_TARGET)
    out += ["## Against PyTorch's own classes", ""]
    out += [
        "relaxit has no class for these methods; a PyTorch user takes them from "
        "`torch.distributions` or `pyro.distributions` (relaxit's substrate). No target; shown "
        "for context.",
        "",
    ]
    out += _peer_table(results, "torch", None)
    out += ["## Against TFP on JAX", ""]
    out += [
        "Same substrate, same compiler: a ratio near 1 is the expected result; below 1 means "
        "TFP is faster.",
        "",
    ]
    out += _peer_table(results, "tfp", None)
    out += ["## Against the noise floor", "", f"Target: within {FLOOR_TARGET:g}x.", ""]
    out += _floor_table(results)

    miss = _misses(results)
    out += ["## Where the targets are missed, and why", ""]
    if not miss:
        out += ["Every row meets its targets in this run.", ""]
    for method, what in miss.items():
        note = PROFILE_NOTES.get(method, "not profiled yet.")
        out += [f"- **{method}** ({'; '.join(what)}): {note}"]
    out.append("")

    out += ["## What each row compares", ""]
    for m in results["methods"]:
        if m.get("note"):
            out.append(f"- **{m['name']}**: {m['note']}")
    out.append("")
    if results["skipped"]:
        out += ["## Skipped", ""]
        out += [f"- {s['method']} ({s['impl']}): {s['why']}" for s in results["skipped"]]
        out.append("")

    if results.get("quality"):
        q = results["quality"]
        out += [
            "## Gradient quality",
            "",
            "Bias and variance of each relaxation (the reparameterisation gradient of "
            "$f$ at the relaxed or straight-through sample) and of each estimator in "
            "`numpyro_relax.estimators`, against the exact gradient of "
            "$\\mathbb{E}[f]$ by enumeration, from "
            f"{q['replicates']} independent estimates. *Relative* means divided by the norm of "
            "the exact gradient. The last column compares the methods at **equal wall time**: "
            "the RMSE of the average of as many estimates as fit in the budget, "
            "$\\sqrt{\\lVert\\text{bias}\\rVert^2 + \\operatorname{tr}\\operatorname{Var}\\cdot "
            "t/T}$, with $t$ the measured time per estimate (jitted, vmapped over the "
            "replicates). Biased methods level off at their bias however long they run; the "
            "unbiased ones keep improving. Rows with identical numbers draw the same noise from "
            "the same key and compute the same estimator (a distribution's pathwise gradient and "
            "the functional estimator of the same name): a cross-check of the two "
            "implementations.",
            "",
        ]
        out += _quality_tables(q)
    return "\n".join(out).rstrip() + "\n"
