"""Packaging: what a user gets from ``python -m build``, and the wheel working outside the tree.

The sdist and the wheel are built offline (``--no-isolation``, with the ``build`` and
``setuptools`` of the test environment) from a copy of the checkout, the wheel from the sdist,
as a package index would. The wheel is then installed with ``pip --no-deps`` into a throwaway
virtual environment outside the tree, which sees the test environment's already-installed
dependencies through a ``.pth`` line (nothing is downloaded), and runs the README's quick start
from a directory that is not the checkout.
"""

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# One xdist worker for the whole module (with `--dist loadgroup`, as `make test` runs), so the
# sdist and wheel are built once, not once per worker.
pytestmark = pytest.mark.xdist_group("packaging")

#: What the copy of the checkout leaves out: environments, build outputs, caches.
_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "build",
    "dist",
    "_build",
    "outputs",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
)


def _version() -> str:
    """``numpyro_relax.__version__``, read from the source (the one place it is written)."""
    tree = ast.parse((ROOT / "numpyro_relax" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("numpyro_relax/__init__.py does not set __version__")


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel built (wheel from sdist) from a clean copy of the checkout."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    out = tmp / "dist"
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)])
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_version_is_written_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    setuptools_cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools_cfg["dynamic"]["version"] == {"attr": "numpyro_relax.__version__"}


def test_floors_are_the_versions_ci_pins():
    """pyproject's dependency floors equal what `make test-oldest` installs, package by package."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", dep.replace(" ", ""))
        assert match, f"runtime dependency {dep!r} has no plain '>=' floor"
        floors[match[1].lower()] = match[2]
    lines = (ROOT / ".ci" / "oldest-constraints.txt").read_text().splitlines()
    pins = dict(
        line.strip().lower().split("==")
        for line in lines
        if line.strip() and not line.startswith("#")
    )
    assert pins == floors


def test_sdist_carries_tests_docs_and_examples(dists):
    with tarfile.open(dists["sdist"]) as tar:
        prefix = f"numpyro_relax-{_version()}/"
        names = {m.name.removeprefix(prefix) for m in tar.getmembers() if m.isfile()}
    expected = {
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "Makefile",
        "pyproject.toml",
        "MANIFEST.in",
        ".ci/oldest-constraints.txt",
        "numpyro_relax/py.typed",
        "docs/conf.py",
        "docs/index.md",
        "benchmarks/results/results.json",
    }
    for tree in ("tests", "examples", "numpyro_relax"):
        expected |= {
            str(p.relative_to(ROOT))
            for p in (ROOT / tree).rglob("*.py")
            if "__pycache__" not in p.parts
        }
    assert {"tests/conftest.py", "tests/conformance.py", "tests/test_packaging.py"} <= expected
    assert not expected - names, f"missing from the sdist: {sorted(expected - names)}"
    assert not [n for n in names if "__pycache__" in n or n.startswith("docs/_build/")]


def test_wheel_contents_and_metadata(dists):
    version = _version()
    assert dists["wheel"].name == f"numpyro_relax-{version}-py3-none-any.whl"
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        info = f"numpyro_relax-{version}.dist-info"
        metadata = Parser().parsestr(whl.read(f"{info}/METADATA").decode())
    assert {n.split("/")[0] for n in names} == {"numpyro_relax", info}
    assert "numpyro_relax/py.typed" in names
    assert f"{info}/licenses/LICENSE" in names
    assert metadata["Name"] == "numpyro-relax" and metadata["Version"] == version
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.11"
    classifiers = metadata.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    requires = metadata.get_all("Requires-Dist")
    for floor in ("jax>=0.8.0", "jaxlib>=0.8.0", "numpyro>=0.20.0", "optax>=0.2.0"):
        assert floor in requires
    assert not [r for r in requires if r.startswith("flax")]


def _quick_start() -> str:
    """The first Python block under the README's "Quick start" heading."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's quick start has no python block"
    return match[1]


def test_wheel_runs_the_readme_quick_start_outside_the_tree(dists, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # pip of the test environment installs into the new one; nothing else is there yet, so the
    # wheel goes in cleanly, without its dependencies and without an index.
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-deps", "--no-index", str(dists["wheel"])]
    )
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    assert (site / "numpyro_relax" / "py.typed").is_file()
    # The dependencies come from the test environment, after the venv's own site-packages (a
    # plain path line: that directory's .pth files, the editable checkout's included, are not run).
    (site / "_test_env_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    script = _quick_start() + (
        "\nimport numpyro_relax\n"
        "print('LOCATION', numpyro_relax.__file__)\n"
        "print('VERSION', numpyro_relax.__version__)\n"
        "print('PROBS', *jax.nn.softmax(result.params['logits']).tolist())\n"
    )
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["JAX_PLATFORMS"] = "cpu"
    out = _run([str(python), "-c", script], cwd=run_dir, env=env).stdout
    fields = dict(line.split(" ", 1) for line in out.splitlines() if line.split(" ")[0].isupper())
    assert Path(fields["LOCATION"]).is_relative_to(site)
    assert not Path(fields["LOCATION"]).is_relative_to(ROOT)
    assert fields["VERSION"] == _version()
    probs = [float(p) for p in fields["PROBS"].split()]
    # The README promises ~ [0, 0, 1]: the data sit at the third centre.
    assert probs[2] > 0.95, probs
