"""The documentation keeps building, and its quick start keeps working.

The build runs Sphinx in a subprocess with warnings as errors and the ``dummy`` builder (it
reads every page and runs autodoc on every module, but writes nothing), into a temporary
directory. Skipped when the ``docs`` extra is not installed (``pip install -e ".[docs]"``).

The browser check of the built pages (typeset maths, figures) is ``make docs-check``
(``docs/check_render.py``, needs Chromium); here its DOM checks run on hand-made pages.
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


DOCS_DEPS = ("sphinx", "myst_parser", "sphinx-mathjax-offline", "matplotlib")


@pytest.mark.skipif(
    bool(_missing(*DOCS_DEPS)),
    reason=f"{', '.join(_missing(*DOCS_DEPS))} not installed (pip install -e '.[docs]')",
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


# ------------------------------------------------------------------------------------------
# The API reference documents every public name (a static check of docs/api/*.rst, no build).
# ------------------------------------------------------------------------------------------

#: Modules whose ``__all__`` is the public API; every module named in the API pages counts too.
PUBLIC_MODULES = (
    "numpyro_relax",
    "numpyro_relax.distributions",
    "numpyro_relax.infer",
    "numpyro_relax.estimators",
    "numpyro_relax.diagnostics",
    "numpyro_relax.datasets",
    "numpyro_relax.laplace_bridge",
    "numpyro_relax.distributions.constraints",
)
_DIRECTIVE = re.compile(
    r"^\.\. (?:auto|py:)(module|class|function|data|exception|attribute|method)::\s*(\S+)"
    r"((?:\n[ \t]+.*|\n[ \t]*(?=\n[ \t]))*)",
    re.MULTILINE,
)


def _import(name: str):
    """The module or object named ``name`` (dotted), or None if it does not import."""
    import importlib

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _own_doc(obj) -> bool:
    import inspect

    return bool((obj.__doc__ or "").strip()) and (
        inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)
    )


def _api_entries():
    """(automodule'd module names, documented objects) as the API pages declare them.

    An ``automodule`` with members documents every name of the module's ``__all__`` that autodoc
    would show: a class or function with a docstring, or data with a ``#:`` comment.
    """
    from sphinx.pycode import ModuleAnalyzer

    modules: set[str] = set()
    documented: list = []
    for rst in sorted((DOCS / "api").glob("*.rst")):
        for kind, name, options in _DIRECTIVE.findall(rst.read_text()):
            name = name.split("(")[0]  # a signature written by hand: ``relaxed_k_hot(k)``
            obj = _import(name)
            if obj is None:
                continue  # a module not in this build: conf.py replaces it by a note
            if kind != "module":
                documented.append(obj)
                continue
            modules.add(name)
            if ":no-members:" in options:
                continue
            attr_docs = ModuleAnalyzer.for_module(name).find_attr_docs()
            for member in getattr(obj, "__all__", ()):
                value = getattr(obj, member)
                if _own_doc(value) or ("", member) in attr_docs:
                    documented.append(value)
    return modules, documented


def _public_names(modules_in_api: set[str]) -> list[tuple[str, str, object]]:
    names = []
    for mod_name in sorted(set(PUBLIC_MODULES) | modules_in_api):
        mod = _import(mod_name)
        for name in getattr(mod, "__all__", ()):
            if not (name.startswith("__") and name.endswith("__")):  # __version__
                names.append((mod_name, name, getattr(mod, name)))
    return names


def test_api_reference_documents_every_public_name():
    import inspect

    modules, documented = _api_entries()
    missing = []
    for mod_name, name, obj in _public_names(modules):
        if inspect.ismodule(obj):
            ok = obj.__name__ in modules or any(m.startswith(obj.__name__ + ".") for m in modules)
        else:
            ok = any(obj is d for d in documented)
        if not ok:
            missing.append(f"{mod_name}.{name}")
    assert not missing, f"public names missing from docs/api/*.rst: {missing}"


def test_api_reference_check_catches_a_missing_name(monkeypatch):
    """The check above can fail: a public name that no API page documents is reported."""
    import numpyro_relax.diagnostics as diagnostics

    def undocumented_helper():
        return None  # no docstring: autodoc would skip it

    monkeypatch.setattr(diagnostics, "undocumented_helper", undocumented_helper, raising=False)
    monkeypatch.setattr(diagnostics, "__all__", [*diagnostics.__all__, "undocumented_helper"])
    with pytest.raises(AssertionError, match="diagnostics.undocumented_helper"):
        test_api_reference_documents_every_public_name()


def test_api_reference_hides_private_bases():
    """docs/conf.py shows the nearest public ancestors instead of private bases (``_OneHotLogits``)."""
    import importlib.util
    import inspect

    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    _, documented = _api_entries()
    classes = [c for c in documented if inspect.isclass(c)]
    assert any(b.__name__.startswith("_") for c in classes for b in c.__bases__)  # a real case
    for cls in classes:
        bases = list(cls.__bases__)
        conf._hide_private_bases(None, cls.__name__, cls, {}, bases)
        assert bases and not any(b.__name__.startswith("_") for b in bases), (cls, bases)


# ------------------------------------------------------------------------------------------
# docs/check_render.py's verdict on rendered DOMs (the browser run itself is `make docs-check`).
# ------------------------------------------------------------------------------------------


def _check_render():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_render", DOCS / "check_render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_render_accepts_typeset_maths(tmp_path):
    (tmp_path / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    dom = (
        '<html><body><p>Noise <span class="math notranslate nohighlight">'
        '<mjx-container class="MathJax"><mjx-math>L</mjx-math>'
        "<mjx-assistive-mml><math><mi>L</mi></math></mjx-assistive-mml></mjx-container></span>"
        ' is logistic.</p><img src="fig.png"><pre>code may show \\(x\\)</pre>'
        '<script>window.MathJax = {tex: {inlineMath: [["\\(", "\\)"]]}}</script></body></html>'
    )
    assert _check_render().check_dom(dom, tmp_path / "page.html") == []


def test_check_render_rejects_raw_tex_and_missing_figures(tmp_path):
    dom = (
        '<html><body><p>Noise <span class="math notranslate nohighlight">\\(L\\)</span>'
        ' is logistic.</p><div class="math notranslate nohighlight">\\[x = 1\\]</div>'
        '<img src="_images/missing.png"></body></html>'
    )
    problems = _check_render().check_dom(dom, tmp_path / "page.html")
    assert any("2 of 2 .math elements not typeset" in p for p in problems)
    assert any("raw TeX '\\\\('" in p for p in problems)
    assert any("raw TeX '\\\\['" in p for p in problems)
    assert any("missing.png" in p for p in problems)
    assert _check_render().check_dom("<html><body><p>text</p></body></html>", tmp_path / "p.html")
