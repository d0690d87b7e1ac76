"""benchmarks/gpu.py --dry-run: the GPU script runs on CPU from the source tree and writes every
section of its report, saying what it could not run (torch may be absent here)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("Environment", "Tests", "Per-method benchmark", "VAE steps/s", "Not run")


def test_dry_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu.md"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # no install needed
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--dry-run", "--output", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    headers = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headers == list(SECTIONS)
    assert "**dry run**" in text
    assert "raised" not in text, text  # every part ran; only absent packages are skipped
    # the tests ran through pytest.main and passed
    assert "| tests/distributions/test_util.py |" in text and "No failures." in text
    # each dry-run method has a timed row, ours against its floor
    for name in ("RelaxedOneHotCategorical", "StraightThroughBernoulli", "HardConcrete"):
        assert f"| {name} | tiny |" in text
    assert "| numpyro-relax (JAX cpu) |" in text
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not importable" in text
    else:
        assert "| PyTorch " in text and "vs torch" in text
