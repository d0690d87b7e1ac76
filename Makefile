# Each target sets up .venv itself, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
JOBS ?= 2

.PHONY: demo test lint bench docs docs-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,examples,docs,dev]"
	touch $(STAMP)

# torch==2.13.0 first: it is the CPU wheel; relaxit then resolves without pulling CUDA builds.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/python examples/vae.py
	@echo "figures written to outputs/vae/"

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -q tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "docs written to docs/_build/html/index.html"

# Opens every page with maths in headless Chromium (apt-get install chromium), offline: the
# formulas must be typeset by the bundled MathJax and every figure must be in the build.
docs-check: docs
	$(BIN)/python docs/check_render.py docs/_build/html

clean:
	rm -rf $(VENV) docs/_build .pytest_cache
