"""numpyro-relax on one GPU: the tests that matter there, the per-method benchmark against PyTorch
on the same GPU, and the VAE's steps/s against the PyTorch VAE, written to one Markdown file.

Runs from the source tree without installing the package, offline, in under 8 minutes on one
GPU (``--budget`` seconds in all; each part stops early and says so when its share is spent)::

    python benchmarks/gpu.py --output gpu-results.md
    python benchmarks/gpu.py --dry-run --output /tmp/gpu.md     # CPU, tiny sizes, seconds (CI)

Parts (each tolerant: a missing package or an incompatible version is reported, not fatal):

1. environment: versions, devices, and which optional pieces exist (torch with CUDA, relaxit,
   TFP, pytest, the datasets);
2. tests: ``pytest.main`` on the float32-numerics, jit and ELBO test files, one child process per
   file (``JAX_PLATFORMS`` left to the default backend, the GPU);
3. per-method benchmark: the rows of ``benchmarks/_methods.py`` (the step of ``make bench``) on
   the GPU, ours jitted, PyTorch / relaxit eager on the same GPU with ``torch.cuda.synchronize``
   after every step, ratios from interleaved rounds (``benchmarks/_timing.py``);
4. VAE: ``benchmarks/vae_torch_comparison.py``'s two sides (Jang et al.'s objective, 784-512-256
   MLPs, batch 100) on the GPU, steps/s in alternating rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))  # this checkout's numpyro_relax, installed or not

SECTIONS = ("Environment", "Tests", "Per-method benchmark", "VAE steps/s", "Not run")
#: test files that matter on an accelerator: float32 numerics at extreme parameters, jit/vmap of
#: every distribution (the conformance suite), the ELBOs and estimators
TEST_FILES = (
    "tests/distributions/test_low_temperature.py",
    "tests/distributions/test_util.py",
    "tests/infer/test_discrete_elbo.py",
    "tests/infer/test_elbo.py",
    "tests/infer/test_straight_through.py",
    "tests/test_estimators.py",
    "tests/distributions/test_categorical.py",
    "tests/distributions/test_bernoulli.py",
    "tests/distributions/test_simplex.py",
)
DRY_TESTS = ("tests/distributions/test_util.py",)
DRY_METHODS = ("RelaxedOneHotCategorical", "StraightThroughBernoulli", "HardConcrete")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--output", type=Path, default=HERE / "results" / "gpu.md", help="Markdown")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, a few methods")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for all parts")
    p.add_argument("--parts", nargs="+", default=["tests", "methods", "vae"])
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds per method")
    p.add_argument("--vae-steps", type=int, default=3000, help="timed steps per VAE side")
    args = p.parse_args(argv)
    if args.dry_run:
        args.repeats, args.vae_steps = 2, 20
    return args


class Report:
    """Markdown sections, rewritten to ``path`` after every change (a killed run keeps its
    finished parts)."""

    def __init__(self, path: Path, title: str) -> None:
        self.path, self.title = path, title
        self.sections: dict[str, list[str]] = {s: [] for s in SECTIONS}
        self.missing: list[str] = []

    def add(self, section: str, *lines: str) -> None:
        self.sections[section].extend(lines)
        self.write()

    def skip(self, what: str) -> None:
        if what in self.missing:
            return
        self.missing.append(what)
        self.sections["Not run"] = [f"- {m}" for m in self.missing]
        self.write()

    def write(self) -> None:
        out = [f"# {self.title}", ""]
        for name, lines in self.sections.items():
            out += [f"## {name}", "", *(lines or ["(nothing)"]), ""]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(out))


def version(name: str) -> str:
    try:
        from importlib.metadata import version as v

        return v(name)
    except Exception:
        return "not installed"


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200] if text else ''}"


# --------------------------------------------------------------------------------------------
def environment(rep: Report, args: argparse.Namespace) -> dict[str, Any]:
    import jax

    env: dict[str, Any] = {"backend": jax.default_backend(), "torch_device": None}
    rows = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        "python": platform.python_version(),
        "jax / jaxlib": f"{version('jax')} / {version('jaxlib')}",
        "JAX backend, devices": f"{jax.default_backend()}: {', '.join(map(str, jax.devices()))}",
    }
    for name in ("numpyro", "optax", "torch", "relaxit", "tfp-nightly", "pytest", "scipy"):
        rows[name] = version(name)
    try:
        import numpyro_relax

        rows["numpyro-relax"] = f"{numpyro_relax.__version__} (source tree {ROOT})"
        env["library"] = True
    except Exception as e:
        rows["numpyro-relax"] = f"**import failed**: {first_line(e)}"
        env["library"] = False
        rep.skip(f"the library does not import here: {first_line(e)}")
    try:
        import torch

        want = "cpu" if args.dry_run else "cuda"
        if want == "cuda" and not torch.cuda.is_available():
            rep.skip("torch has no CUDA device: every PyTorch and relaxit comparison")
        else:
            env["torch_device"] = want
            name = torch.cuda.get_device_name(0) if want == "cuda" else "cpu"
            rows["torch device"] = f"{want} ({name})"
    except ImportError as e:
        rep.skip(f"torch is not importable ({first_line(e)}): every PyTorch and relaxit row")
    if not args.dry_run and env["backend"] != "gpu":
        rep.skip(f"JAX's backend is {env['backend']}, not gpu: this is NOT a GPU measurement")
    rep.add(
        "Environment",
        f"Mode: {'**dry run** (CPU, tiny sizes: not a measurement)' if args.dry_run else 'full'}; "
        f"started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows.items()),
    )
    return env


# --------------------------------------------------------------------------------------------
def run_tests(rep: Report, args: argparse.Namespace, deadline: float) -> None:
    try:
        import pytest  # noqa: F401
    except ImportError:
        rep.skip("pytest is not installed: the test part")
        return
    files = [f for f in (DRY_TESTS if args.dry_run else TEST_FILES) if (ROOT / f).exists()]
    rows = [
        "| file | passed | failed | errors | skipped | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    failures: list[str] = []
    rep.add("Tests", f"`pytest.main` per file in a child process ({', '.join(files)}).", "")
    for f in files:
        left = deadline - time.perf_counter()
        if left < 15:
            rep.skip(f"tests in {f}: the test share of --budget was spent")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            xml = Path(tmp) / "junit.xml"
            code = (
                "import sys, pytest; sys.exit(pytest.main(["
                f"{str(ROOT / f)!r}, '-q', '-p', 'no:cacheprovider', '--junitxml', {str(xml)!r}]))"
            )
            env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_PYTHON_CLIENT_PREALLOCATE="false")
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", code], cwd=ROOT, env=env, timeout=left,
                    capture_output=True, text=True,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                rows.append(f"| {f} | – | – | – | – | timed out after {left:.0f} |")
                rep.skip(f"tests in {f}: killed at the end of the test share of --budget")
                continue
            seconds = time.perf_counter() - t0
            if not xml.exists():
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                rows.append(f"| {f} | – | – | – | – | {seconds:.0f} |")
                failures.append(
                    f"- {f}: pytest did not run (rc {proc.returncode}): {' / '.join(tail)}"
                )
                continue
            suite = ET.parse(xml).getroot()
            suite = suite if suite.tag == "testsuite" else suite[0]
            n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
            passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
            rows.append(
                f"| {f} | {passed} | {n['failures']} | {n['errors']} | {n['skipped']} | {seconds:.0f} |"
            )
            for case in suite.iter("testcase"):
                for bad in list(case.findall("failure")) + list(case.findall("error")):
                    msg = (bad.get("message") or "").splitlines()
                    failures.append(f"- `{case.get('name')}` ({f}): {msg[0][:200] if msg else ''}")
    rep.add("Tests", *rows, "", "Failures and errors:" if failures else "No failures.", *failures)


# --------------------------------------------------------------------------------------------
def synced(step: Any, torch_device: str) -> Any:
    """A PyTorch step that waits for the GPU (eager CUDA calls return before the work is done)."""
    import torch

    if torch_device != "cuda":
        return step

    def run() -> Any:
        out = step()
        torch.cuda.synchronize()
        return out

    return run


def run_methods(rep: Report, args: argparse.Namespace, env: dict, deadline: float) -> None:
    import numpy as np
    from _methods import METHODS, SIZES, Missing, floor_step
    from _timing import interleaved, ratio_stats

    sizes = {"tiny": {"bits": (16, 8), "cats": (16, 4, 5)}} if args.dry_run else SIZES
    methods = [m for m in METHODS if not args.dry_run or m.name in DRY_METHODS]
    min_time = 0.005 if args.dry_run else 0.03
    rep.add(
        "Per-method benchmark",
        "One training-style step per method (sample, log_prob, gradient; see docs/benchmarks.md). "
        "Ours and the floor jitted on JAX's default device; PyTorch/relaxit eager on "
        f"`{env['torch_device']}`. Speed-up = peer time / ours (median [IQR] of {args.repeats} "
        "interleaved rounds); floor = ours / the noise alone.",
        "",
        "| method | size | shape | ours ms | floor | vs torch | vs relaxit | vs TFP | peer device |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    )
    if env["torch_device"]:
        import torch

        torch.set_default_device(env["torch_device"])  # the peers' tensors and noise
    for size, shapes in sizes.items():
        for m in methods:
            if time.perf_counter() > deadline:
                rep.skip(f"method {m.name} at {size}: the benchmark share of --budget was spent")
                continue
            try:
                inp = m.inputs(shapes[m.kind])
                main = next(k for k in inp if k != "w" and k not in ("values", "correlation"))
                fns = {"ours": m.ours(inp, m.log_prob), "floor": floor_step(inp, m.noise, main)}
            except Exception as e:
                rep.skip(f"{m.name} at {size}: ours did not build ({first_line(e)})")
                continue
            where = set()
            for peer, build in m.peers.items():
                if peer in ("torch", "relaxit") and not env["torch_device"]:
                    continue
                try:
                    fn = build(inp, m.log_prob)
                    if peer != "tfp":
                        out = fn()  # first call; where did the gradient land?
                        where.add(str(out[0].device) if isinstance(out, tuple) else "?")
                        fn = synced(fn, env["torch_device"])
                    fns[peer] = fn
                except Missing as e:  # once per peer when the package is absent
                    rep.skip(f"{peer}: {e}" if "not installed" in str(e) else f"{m.name}: {e}")
                except Exception as e:
                    rep.skip(f"{peer} for {m.name} at {size}: raised {first_line(e)}")
            try:
                for fn in fns.values():
                    fn()  # compile / warm up
                times, _ = interleaved(fns, args.repeats, min_time)
            except Exception as e:
                rep.skip(f"{m.name} at {size}: timing raised {first_line(e)}")
                continue

            def ratio(peer: str, times: dict = times) -> str:
                if peer not in times:
                    return "–"
                r = ratio_stats(times[peer], times["ours"])
                return f"{r['median']:.2f} [{r['q1']:.2f}, {r['q3']:.2f}]"

            ours_ms = 1e3 * float(np.median(times["ours"]))
            floor = ratio_stats(times["ours"], times["floor"])["median"]
            shape = "x".join(map(str, shapes[m.kind]))
            rep.add(
                "Per-method benchmark",
                f"| {m.name} | {size} | {shape} | {ours_ms:.3g} | {floor:.2f} | {ratio('torch')} "
                f"| {ratio('relaxit')} | {ratio('tfp')} | {', '.join(sorted(where)) or '–'} |",
            )


# --------------------------------------------------------------------------------------------
def vae_data(dry_run: bool) -> tuple[Any, str]:
    import numpy as np

    if not dry_run:
        try:
            from numpyro_relax.datasets import load_dataset

            return load_dataset("fashion-mnist", split="train").x, "Fashion-MNIST"
        except Exception as e:
            why = first_line(e)
    else:
        why = "dry run"
    n, d = (256, 64) if dry_run else (10_000, 784)
    x = np.random.default_rng(0).random((n, d), dtype=np.float32)
    return x, f"synthetic uniform intensities {n} x {d} ({why}; speed does not depend on pixels)"


def run_vae(rep: Report, args: argparse.Namespace, env: dict, deadline: float) -> None:
    import numpy as np

    if not env["torch_device"]:
        rep.skip("the PyTorch VAE (no torch with a device here); ours is timed alone")
    try:
        import matplotlib  # noqa: F401  (examples/vae.py imports it; only its figures use it)
    except ImportError:
        stub = type(sys)("matplotlib")
        stub.use = lambda *a, **k: None
        sys.modules["matplotlib"] = stub
        sys.modules["matplotlib.pyplot"] = type(sys)("matplotlib.pyplot")
        rep.skip("matplotlib is not installed: stubbed for examples/vae.py (no figures needed)")
    import vae_torch_comparison as vtc

    if args.dry_run:
        vtc.HIDDEN = (16, 8)  # read by both sides at construction
    x, source = vae_data(args.dry_run)
    rounds = 2 if args.dry_run else 4
    steps = max(rounds, args.vae_steps // rounds * rounds)
    rep.add(
        "VAE steps/s",
        f"`benchmarks/vae_torch_comparison.py`'s two sides, Jang et al.'s objective on both "
        f"(PyTorch `F.gumbel_softmax`, ours `examples/vae.py --relax --kl discrete`), 20 x 10 "
        f"latents, MLPs {vtc.HIDDEN}, batch 100, {steps} timed steps each in {rounds} alternating "
        f"rounds, compilation and warm-up excluded. Data: {source}.",
        "",
    )
    vargs = vtc.parse_args(
        ["--steps", str(steps), "--rounds", str(rounds), "--ours-kl", "discrete"]
        + ["--log-every", str(min(100, steps // rounds))]
    )
    ours = vtc.Ours(vargs, x, x[:100])
    torch_vae = gen = xt = None
    if env["torch_device"]:
        import torch

        torch.set_default_device(env["torch_device"])
        xt = torch.as_tensor(x, device=env["torch_device"])
        gen = torch.Generator(device=env["torch_device"]).manual_seed(0)
        vtc.TorchVAE(x.shape[1], "jang", vargs.lr, 0).train(xt, 0, 20, 100, gen)  # warm-up
        torch_vae = vtc.TorchVAE(x.shape[1], "jang", vargs.lr, 0)
    ours.train(0, min(100, steps // rounds))  # compile + warm-up
    t_torch = t_ours = 0.0
    loss_torch, loss_ours = [], []
    for _ in range(rounds):
        if time.perf_counter() > deadline:
            rep.skip("VAE rounds: the VAE share of --budget was spent")
            break
        if torch_vae is not None:
            t0 = time.perf_counter()
            loss_torch.append(torch_vae.train(xt, 0, steps // rounds, 100, gen))
            t_torch += time.perf_counter() - t0
        losses, seconds = ours.train(0, steps // rounds)
        loss_ours.append(losses)
        t_ours += seconds
    done = steps // rounds * len(loss_ours)
    if not done:
        return
    rows = ["| side | steps/s | final train loss |", "|---|---:|---:|"]
    if loss_torch:
        rows.append(
            f"| PyTorch {version('torch')} on {env['torch_device']} | {done / t_torch:.1f} "
            f"| {np.concatenate(loss_torch)[-100:].mean():.1f} |"
        )
    rows.append(
        f"| numpyro-relax (JAX {env['backend']}) | {done / t_ours:.1f} "
        f"| {np.concatenate(loss_ours)[-100:].mean():.1f} |"
    )
    if loss_torch:
        rows += ["", f"Speed-up (PyTorch time / ours): {t_torch / t_ours:.2f}x."]
    rep.add("VAE steps/s", *rows)


# --------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave memory to torch
    if args.dry_run:
        os.environ["JAX_PLATFORMS"] = "cpu"
    rep = Report(args.output, "numpyro-relax on a GPU (benchmarks/gpu.py)")
    rep.write()
    env = environment(rep, args)
    shares = {"tests": 0.35, "methods": 0.35, "vae": 0.3}
    spent = 0.0
    for part, run in (("tests", run_tests), ("methods", run_methods), ("vae", run_vae)):
        spent += shares[part]
        if part not in args.parts:
            rep.skip(f"the {part} part (not in --parts)")
            continue
        if part != "tests" and not env.get("library"):
            continue
        deadline = t_start + spent * args.budget
        try:
            run(rep, args, deadline) if part == "tests" else run(rep, args, env, deadline)
        except Exception as e:
            rep.skip(f"the {part} part raised {first_line(e)}")
            traceback.print_exc()
    rep.add("Environment", "", f"Wall time: {time.perf_counter() - t_start:.0f} s.")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
