"""Benchmarks of numpyro_relax against its peers, side by side in one run.

Usage::

    python benchmarks/run.py            # default: fits well under 15 minutes on a 2-core CPU
    python benchmarks/run.py --quick    # fewer repeats and replicates (a smoke run, ~2 minutes)
    python benchmarks/run.py --only Bernoulli --sizes vae --no-quality

Writes ``benchmarks/results/results.json`` (every number, with the environment) and
``benchmarks/results/results.md`` plus ``docs/benchmarks.md`` (the same Markdown tables). See
``benchmarks/README.md`` for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))  # benchmark this checkout's numpyro_relax, installed or not

import numpy as np  # noqa: E402
from _methods import (  # noqa: E402
    METHODS,
    RELAXIT_UNMATCHED,
    SIZES,
    STATIC,
    Missing,
    floor_step,
    with_rng,
)
from _report import render  # noqa: E402
from _timing import interleaved, ratio_stats, summarize  # noqa: E402


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "not installed"


def environment() -> dict[str, str]:
    import jax

    env = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.processor() or platform.platform()}",
        "python": platform.python_version(),
        "jax / jaxlib": f"{_version('jax')} / {_version('jaxlib')} ({jax.default_backend()})",
        "jax_threefry_partitionable": str(jax.config.jax_threefry_partitionable),
        "numpyro": _version("numpyro"),
        "numpyro-relax": _version("numpyro-relax"),
        "torch": _version("torch"),
        "pyro-ppl": _version("pyro-ppl"),
        "relaxit": _version("relaxit"),
        "tfp-nightly": _version("tfp-nightly"),
    }
    try:
        import torch

        env["torch threads"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return env


def main_param(inp: dict) -> str:
    return next(k for k in inp if k != "w" and k not in STATIC)


def run_timings(args, log) -> tuple[list, list]:
    timings, skipped = [], []
    methods = [m for m in METHODS if not args.only or any(s in m.name for s in args.only)]
    floors: dict[tuple, object] = {}  # the floor depends only on (noise, shape, RNG mode)
    too_slow: dict[str, float] = {}
    for size in args.sizes:
        for m in methods:
            shape = SIZES[size][m.kind]
            if m.name in too_slow:
                why = (
                    f"skipped at {size}: {too_slow[m.name]:.2f} s per step at the smaller size "
                    f"already (over --max-step-seconds {args.max_step_seconds:g})"
                )
                skipped.append({"method": m.name, "impl": "all", "size": size, "why": why})
                log(f"{size:5s} {m.name}: {why}")
                continue
            inp = m.inputs(shape)
            main = main_param(inp)
            fns = {}
            try:
                fns["ours"] = m.ours(inp, m.log_prob)
            except Missing as e:
                skipped.append({"method": m.name, "impl": "ours", "size": size, "why": str(e)})
                log(f"{size:5s} {m.name}: skipped ({e})")
                continue
            fkey = (m.noise, np.shape(inp[main]), None)
            floors.setdefault(fkey, floor_step(inp, m.noise, main))
            fns["floor"] = floors[fkey]
            torch_peers = [p for p in m.peers if p in ("relaxit", "torch")]
            torch_peers = [p for p in torch_peers if p not in args.skip_peers]
            if size in args.fast_rng_sizes and torch_peers:
                # the same step under JAX's non-partitionable threefry (faster on CPU)
                fns["ours_fast_rng"] = with_rng(False, lambda m=m, inp=inp: m.ours(inp, m.log_prob))
                fkey = (m.noise, np.shape(inp[main]), False)
                floors.setdefault(
                    fkey,
                    with_rng(False, lambda m=m, inp=inp, main=main: floor_step(inp, m.noise, main)),
                )
                fns["floor_fast_rng"] = floors[fkey]
            for peer, build in m.peers.items():
                if peer in args.skip_peers:
                    continue
                try:
                    fns[peer] = build(inp, m.log_prob)
                except Missing as e:
                    skipped.append({"method": m.name, "impl": peer, "size": size, "why": str(e)})
            t0 = time.perf_counter()
            for name in list(fns):  # first call: compiles (JAX); a crashing peer is dropped
                try:
                    fns[name]()
                except Exception as e:
                    if name.startswith(("ours", "floor")):
                        raise
                    fns.pop(name)
                    why = f"raised {type(e).__name__}: {str(e).splitlines()[0][:160]}"
                    skipped.append({"method": m.name, "impl": name, "size": size, "why": why})
                    if args.verbose:
                        traceback.print_exc()
            t_compile = time.perf_counter() - t0
            times, mean_times = interleaved(fns, args.repeats, args.min_time)
            entry = {
                "method": m.name,
                "family": m.family,
                "size": size,
                "shape": list(shape),
                "noise": m.noise,
                "log_prob": m.log_prob,
                "times": {k: summarize(v) for k, v in times.items()},
                "mean_times": {k: summarize(v) for k, v in mean_times.items()},
                "raw_times": times,
                "ratios": {},
            }
            for peer in fns:
                if peer.startswith(("ours", "floor")):
                    continue
                entry["ratios"][peer] = ratio_stats(times[peer], times["ours"])
                if "ours_fast_rng" in fns and peer in ("relaxit", "torch"):
                    entry["ratios"][f"{peer}_fast_rng"] = ratio_stats(
                        times[peer], times["ours_fast_rng"]
                    )
            entry["ratios"]["floor"] = ratio_stats(times["ours"], times["floor"])
            if "ours_fast_rng" in fns:
                entry["ratios"]["floor_fast_rng"] = ratio_stats(
                    times["ours_fast_rng"], times["floor_fast_rng"]
                )
            timings.append(entry)
            step = entry["times"]["ours"]["median"]
            if step > args.max_step_seconds:
                too_slow[m.name] = step
            desc = "  ".join(f"{k} {v['median']:.2f}x" for k, v in entry["ratios"].items())
            log(
                f"{size:5s} {m.name[:40]:40s} ours {step * 1e3:8.2f} ms  {desc}  "
                f"(first calls {t_compile:.1f}s, total {time.perf_counter() - t0:.1f}s)"
            )
    return timings, skipped


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and replicates")
    p.add_argument(
        "--repeats", type=int, default=None, help="interleaved rounds (default 7, quick 3)"
    )
    p.add_argument(
        "--min-time",
        type=float,
        default=None,
        help="seconds per measurement (default 0.05, quick 0.03)",
    )
    p.add_argument(
        "--sizes", nargs="+", default=None, choices=list(SIZES), help="default: all (quick: vae)"
    )
    p.add_argument("--only", nargs="*", default=None, help="substrings of method names to run")
    p.add_argument(
        "--skip-peers", nargs="*", default=[], help="peers not to run (relaxit torch tfp)"
    )
    p.add_argument("--no-quality", action="store_true", help="skip the gradient-quality study")
    p.add_argument(
        "--fast-rng-sizes",
        nargs="*",
        default=["vae"],
        choices=list(SIZES),
        help="sizes at which rows with a PyTorch peer are also timed under\n"
        "jax_threefry_partitionable=False (default: vae; none: no extra timing)",
    )
    p.add_argument(
        "--max-step-seconds",
        type=float,
        default=0.5,
        help="a method whose step takes longer than this at one size is not run at the next",
    )
    p.add_argument("--replicates", type=int, default=None, help="estimates per quality method")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument(
        "--docs",
        type=str,
        default=str(ROOT / "docs" / "benchmarks.md"),
        help="Markdown page to write ('' to skip)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per framework: 1 (default) pins XLA and PyTorch to one core each, which\n"
        "measures per-core throughput and is robust to other load; 0 keeps library defaults",
    )
    p.add_argument(
        "--render-only",
        action="store_true",
        help="re-write the Markdown from an existing results.json in --out-dir (no timing)",
    )
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    args.sizes = args.sizes or (["vae"] if args.quick else list(SIZES))
    args.repeats = args.repeats or (3 if args.quick else 7)
    args.min_time = args.min_time or (0.03 if args.quick else 0.05)
    args.replicates = args.replicates or (2**12 if args.quick else 2**15)
    return args


def set_threads(n: int) -> None:
    """Pin XLA:CPU and PyTorch to ``n`` intra-op threads (before JAX is imported)."""
    if n <= 0:
        return
    if "jax" in sys.modules:
        raise RuntimeError("set_threads must run before jax is imported")
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = (
        f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}".strip()
    )
    try:
        import torch

        torch.set_num_threads(n)
        torch.set_num_interop_threads(n)
    except ImportError:
        pass


def write_markdown(results: dict, args) -> None:
    md = render(results)
    (args.out_dir / "results.md").write_text(md)
    if args.docs:
        Path(args.docs).write_text(md)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render_only:
        write_markdown(json.loads((args.out_dir / "results.json").read_text()), args)
        return 0
    set_threads(args.threads)
    t_start = time.perf_counter()
    load_start = os.getloadavg()[0]

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)

    import jax

    jax.config.update("jax_platforms", "cpu")
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass

    log(
        f"mode {'quick' if args.quick else 'default'}: {args.repeats} repeats, "
        f"{args.min_time * 1e3:g} ms per measurement"
    )
    timings, skipped = run_timings(args, log)
    for name, why in RELAXIT_UNMATCHED.items():
        skipped.append({"method": f"relaxit.{name}", "impl": "relaxit", "size": "all", "why": why})

    quality = None
    if not args.no_quality:
        from _quality import run_quality

        log(f"gradient quality, {args.replicates} replicates per method")
        quality = run_quality(args.replicates, log)
        quality["replicates"] = args.replicates

    results = {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "mode": "quick" if args.quick else "default",
            "repeats": args.repeats,
            "min_time_s": args.min_time,
            "sizes": {s: SIZES[s] for s in args.sizes},
            "environment": environment(),
            "wall_time_s": None,
        },
        "methods": [
            {"name": m.name, "family": m.family, "kind": m.kind, "noise": m.noise, "note": m.note}
            for m in METHODS
            if not args.only or any(s in m.name for s in args.only)
        ],
        "timings": timings,
        "skipped": _dedupe(skipped),
        "quality": quality,
    }
    results["meta"]["wall_time_s"] = round(time.perf_counter() - t_start, 1)
    results["meta"]["environment"]["threads per framework"] = (
        str(args.threads) if args.threads > 0 else "library defaults"
    )
    results["meta"]["environment"]["load average (1 min) at start / end"] = (
        f"{load_start:.1f} / {os.getloadavg()[0]:.1f}"
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results["meta"]["previous_run"] = compare_with_previous(args.out_dir / "results.json", results)
    (args.out_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_markdown(results, args)
    log(
        f"wrote {args.out_dir / 'results.json'} and the Markdown tables "
        f"({results['meta']['wall_time_s']} s in all)"
    )
    return 0


def compare_with_previous(path: Path, results: dict) -> dict | None:
    """How much the median ratios moved since the run stored at ``path`` (run-to-run spread).

    On a shared machine this is usually wider than the within-run IQR; it says how far to
    trust a ratio near a target.
    """
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    before = {(e["method"], e["size"]): e["ratios"] for e in old.get("timings", [])}
    changes = []
    for e in results["timings"]:
        prev = before.get((e["method"], e["size"]), {})
        for peer, r in e["ratios"].items():
            if peer in prev and prev[peer]["median"] > 0 and r["median"] > 0:
                changes.append(abs(np.log(r["median"] / prev[peer]["median"])))
    if not changes:
        return None
    return {
        "date": old.get("meta", {}).get("date"),
        "ratios_compared": len(changes),
        "median_change": float(np.exp(np.median(changes)) - 1),
        "p90_change": float(np.exp(np.percentile(changes, 90)) - 1),
    }


def _dedupe(skipped: list[dict]) -> list[dict]:
    """One line per (method, impl, reason) across sizes."""
    seen: dict[tuple, dict] = {}
    for s in skipped:
        key = (s["method"], s["impl"], s["why"])
        if key in seen:
            seen[key]["size"] = "all"
        else:
            seen[key] = dict(s)
    return list(seen.values())


if __name__ == "__main__":
    sys.exit(main())
