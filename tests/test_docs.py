"""The documentation keeps building, and its quick start keeps working.

The build runs Sphinx in a subprocess with warnings as errors and the ``dummy`` builder (it
reads every page and runs autodoc on every module, but writes nothing), into a temporary
directory. Skipped when Sphinx or MyST are not installed (``pip install -e ".[docs]"``).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(
    bool(_missing("sphinx", "myst_parser")),
    reason="sphinx / myst-parser not installed (pip install -e '.[docs]')",
)
def test_docs_build_without_warnings(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "dummy",
        "-d",
        str(tmp_path / "doctrees"),
        str(DOCS),
        str(tmp_path / "out"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"


def test_quick_start_runs():
    """The quick start of docs/getting_started.md, executed as written."""
    text = (DOCS / "getting_started.md").read_text()
    code = re.search(r"## Quick start.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "getting_started.md", "exec"), namespace)
    import jax

    probs = jax.nn.softmax(namespace["result"].params["logits"])
    assert float(probs[2]) > 0.9  # the data come from the third centre
