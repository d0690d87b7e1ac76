"""Sphinx configuration for the numpyro-relax documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (``make docs``). Pages are Markdown
(MyST) except where reST is simpler; the API reference is generated from the docstrings.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# The figures are computed on the CPU (and JAX then skips probing for accelerators).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, ROOT)  # the package is importable without installing it

from numpyro_relax import __version__  # noqa: E402

project = "numpyro-relax"
author = "numpyro-relax developers"
copyright = "numpyro-relax developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    # MathJax 3 from the wheel, copied into _static/mathjax: formulas typeset without network
    # (sphinx.ext.mathjax alone loads MathJax from a CDN, and offline the page shows raw TeX).
    "sphinx-mathjax-offline",
    # figures computed from the library when the docs are built (``.. plot::``)
    "matplotlib.sphinxext.plot_directive",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Docstrings are Sphinx reST (``:param x:``); napoleon also reads Google/NumPy sections.
napoleon_google_docstring = True
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Do not copy NumPyro's docstrings onto overridden methods that have none of their own.
autodoc_inherit_docstrings = False
autodoc_default_options = {"members": True, "show-inheritance": True}

if importlib.util.find_spec("furo") is not None:
    html_theme = "furo"
else:  # the build must not depend on the theme
    html_theme = "alabaster"
html_title = f"numpyro-relax {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # wide tables scroll instead of being clipped

# ``.. plot::`` figures: the scripts live in docs/_figures and run at build time (no committed
# PNGs). One PNG per figure, no source links (the scripts are build helpers).
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]  # 11-inch figures: 1210 px, sharp at the column width
plot_rcparams = {"figure.dpi": 110, "savefig.bbox": "tight", "font.size": 9}
plot_basedir = "_figures"

# ------------------------------------------------------------------------------------------
# API pages name modules with ``automodule``. A module that is not in this checkout yet (the
# families land one by one) is replaced by a note instead of failing the build; a module that
# exists but fails to import still fails it.
# ------------------------------------------------------------------------------------------
_AUTOMODULE = re.compile(r"^(\.\. automodule:: *)(\S+)[ \t]*$((?:\n {3}.*)*)", re.MULTILINE)


def _module_missing(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        return e.name == name or name.startswith(f"{e.name}.")
    return False


def _drop_missing_modules(app, docname, source):
    if not docname.startswith("api/"):
        return

    def repl(m: re.Match) -> str:
        name = m.group(2)
        if _module_missing(name):
            return f"*The module* ``{name}`` *is not part of this build.*"
        return m.group(0)

    source[0] = _AUTOMODULE.sub(repl, source[0])


# ------------------------------------------------------------------------------------------
# docs/benchmarks.md is written by benchmarks/run.py (`make bench`), which would drop anything
# added to the file by hand: the figure of its ratios is inserted here, when the page is read,
# from the same run's results file (and left out of a checkout that has none).
# ------------------------------------------------------------------------------------------
_BENCHMARK_RESULTS = os.path.join(ROOT, "benchmarks", "results", "results.json")
_BENCHMARK_FIGURE = """
```{eval-rst}
.. plot:: benchmark_ratios.py

   The summary table as a figure (read from ``benchmarks/results/results.json``): left, the
   speed-up against each peer with its inter-quartile range over the interleaved rounds (above 1:
   numpyro-relax is faster); right, our time over the cost of drawing the noise alone. Dashed: the
   targets (3x relaxit, within 2x the floor).
```

"""


def _add_benchmark_figure(app, docname, source):
    if docname != "benchmarks" or not os.path.isfile(_BENCHMARK_RESULTS):
        return
    app.env.note_dependency(_BENCHMARK_RESULTS)  # a new run re-reads the page
    anchor = "\n## Against relaxit"
    at = source[0].find(anchor)
    at = len(source[0]) if at < 0 else at + 1
    source[0] = source[0][:at] + _BENCHMARK_FIGURE + source[0][at:]


# ------------------------------------------------------------------------------------------
# Private base classes (``_OneHotLogits``, ``_BernoulliMoments``, ...) share code between public
# classes; they are not part of the API. "Bases:" shows the nearest public ancestors instead.
# ------------------------------------------------------------------------------------------
def _public_bases(bases) -> list:
    out: list = []
    for base in bases:
        candidates = _public_bases(base.__bases__) if base.__name__.startswith("_") else [base]
        for c in candidates:
            if c not in out and c is not object:
                out.append(c)
    return out


def _hide_private_bases(app, name, obj, options, bases):
    if any(b.__name__.startswith("_") for b in bases):
        bases[:] = _public_bases(bases) or [object]


def setup(app):
    app.connect("source-read", _drop_missing_modules)
    app.connect("source-read", _add_benchmark_figure)
    app.connect("autodoc-process-bases", _hide_private_bases)
    return {"parallel_read_safe": True}
