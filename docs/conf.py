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


def setup(app):
    app.connect("source-read", _drop_missing_modules)
    return {"parallel_read_safe": True}
