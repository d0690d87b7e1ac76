"""Check the built HTML docs in a real headless browser: maths typeset offline, figures present.

Usage (``make docs-check`` builds the docs first, then runs this)::

    python docs/check_render.py [docs/_build/html] [--page families/binary.html ...]

For every page whose HTML has maths (``class="math"``), or for the pages given with ``--page``,
Chromium loads the page from disk with JavaScript on and no network (``--headless --dump-dom``,
``--virtual-time-budget`` lets MathJax finish), and the rendered DOM must have:

- every ``.math`` element typeset (an ``mjx-container`` inside it), and at least one of them;
- no raw TeX delimiter (``\\(``, ``\\[``, ``$$``) left in the visible text (scripts, styles and
  code blocks excluded);
- every ``<img>`` pointing at a non-empty file of the build (the ``.. plot::`` figures), and at
  least one such figure on the pages that build one (``--figure-pages``).

The browser is ``$CHROMIUM``, else the first of ``chromium``, ``chromium-browser``,
``google-chrome`` on the ``PATH`` (Debian: ``apt-get install chromium``). Without one the script
exits with status 2 and says so. Exit status 1 lists every failing page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
RAW_TEX = ("\\(", "\\[", "$$")
# text inside these elements is not rendered prose (code may legitimately show TeX)
SKIP_TEXT = {"script", "style", "pre", "code", "noscript", "mjx-assistive-mml", "textarea"}
VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip


class _RenderedPage(HTMLParser):
    """Collects, from a rendered DOM: .math elements and whether each holds an mjx-container,
    the visible text, and the image sources."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, is a .math element)
        self.math_open: list[int] = []  # indices in self.math of the open .math elements
        self.math: list[bool] = []  # one per .math element: typeset?
        self.text: list[str] = []
        self.images: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "img" and attr.get("src"):
            self.images.append(attr["src"] or "")
        if tag == "mjx-container":
            for i in self.math_open:
                self.math[i] = True
        if tag in VOID:
            return
        classes = (attr.get("class") or "").split()
        is_math = "math" in classes and tag in ("span", "div")
        if is_math:
            self.math_open.append(len(self.math))
            self.math.append(False)
        if tag in SKIP_TEXT:
            self.skip_depth += 1
        self.stack.append((tag, is_math))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        # pop to the matching tag (the DOM dump is well formed; be lenient anyway)
        while self.stack:
            open_tag, is_math = self.stack.pop()
            if is_math:
                self.math_open.pop()
            if open_tag in SKIP_TEXT:
                self.skip_depth -= 1
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.text.append(data)


def check_dom(dom: str, page: Path, need_figure: bool = False, need_math: bool = True) -> list[str]:
    """Problems found in one rendered page (empty list: it renders)."""
    parser = _RenderedPage()
    parser.feed(dom)
    problems = []
    if need_math and not parser.math:
        problems.append("no .math element in the rendered page")
    untypeset = parser.math.count(False)
    if untypeset:
        problems.append(f"{untypeset} of {len(parser.math)} .math elements not typeset by MathJax")
    text = "".join(parser.text)
    for delim in RAW_TEX:
        at = text.find(delim)
        if at >= 0:
            snippet = " ".join(text[max(0, at - 40) : at + 60].split())
            problems.append(f"raw TeX {delim!r} in the visible text: ...{snippet}...")
    figures = [src for src in parser.images if "_images/" in src]
    if need_figure and not figures:
        problems.append("no figure (an <img> from _images/) on a page that builds one")
    for src in parser.images:
        parts = urlsplit(src)
        if parts.scheme in ("http", "https", "data"):
            continue
        target = (page.parent / unquote(parts.path)).resolve()
        if not target.is_file() or target.stat().st_size == 0:
            problems.append(f"image {src} is missing from the build")
    return problems


def find_browser() -> str | None:
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"]) or os.environ["CHROMIUM"]
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def render(browser: str, page: Path, budget_ms: int, timeout_s: float) -> str:
    """The DOM of ``page`` after its scripts ran, as Chromium serialises it."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",  # running as root in containers
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            "--dump-dom",
            page.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"{browser} failed on {page} ({proc.returncode}): {proc.stderr[-500:]}")
    return proc.stdout


def pages_with_maths(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*.html")
        if "_static" not in p.parts and 'class="math' in p.read_text(encoding="utf-8")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "html", nargs="?", default="docs/_build/html", help="the HTML build to check"
    )
    parser.add_argument(
        "--page",
        action="append",
        default=None,
        help="page to check, relative to HTML (repeatable; default: every page with maths)",
    )
    parser.add_argument(
        "--budget-ms", type=int, default=5000, help="virtual time the page's scripts get"
    )
    parser.add_argument(
        "--figure-pages",
        nargs="*",
        default=["families/*.html", "api/estimators.html"],
        help="glob patterns, relative to HTML, of pages that must show a figure",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per page")
    parser.add_argument("--jobs", type=int, default=2, help="browsers run at once")
    args = parser.parse_args(argv)

    root = Path(args.html)
    if not (root / "index.html").is_file():
        print(f"no HTML build at {root} (run `make docs` first)", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        print(
            "no headless browser found: install Chromium (Debian: apt-get install chromium) "
            "or set $CHROMIUM",
            file=sys.stderr,
        )
        return 2
    pages = [root / p for p in args.page] if args.page else pages_with_maths(root)
    with_maths = set(pages)
    # a page that must show a figure is checked even if it has no maths
    pages += sorted(
        p
        for pattern in args.figure_pages
        for p in root.glob(pattern)
        if not args.page and p not in pages
    )
    if not pages:
        print(f"no page with maths under {root}", file=sys.stderr)
        return 1

    need_figure = {p.resolve() for pattern in args.figure_pages for p in root.glob(pattern)}
    if not need_figure and args.figure_pages:
        print(f"no page matches --figure-pages {args.figure_pages}", file=sys.stderr)
        return 1

    def one(page: Path) -> tuple[Path, list[str]]:
        try:
            dom = render(browser, page, args.budget_ms, args.timeout)
            return page, check_dom(dom, page, page.resolve() in need_figure, page in with_maths)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            return page, [str(e)]

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(one, pages))
    failed = 0
    for page, problems in results:
        name = page.relative_to(root)
        if problems:
            failed += 1
            print(f"FAIL {name}")
            for p in problems:
                print(f"     {p}")
        else:
            print(f"ok   {name}")
    print(
        f"{len(pages) - failed} of {len(pages)} pages render with typeset maths and their figures "
        f"({browser})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
