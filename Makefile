# Each target sets up .venv itself, so a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
JOBS ?= 2
# The oldest supported jax/jaxlib/numpyro/optax (pyproject's floors), in an environment of their own.
OLDEST_VENV := .venv-oldest
OLDEST_BIN := $(OLDEST_VENV)/bin
OLDEST_STAMP := $(OLDEST_VENV)/.installed
OLDEST_CONSTRAINTS := .ci/oldest-constraints.txt
OLDEST_PYTHON ?= $(shell command -v python3.11 || echo $(PYTHON))
OLDEST_TESTS ?= tests/distributions tests/infer

.PHONY: demo test test-oldest lint bench docs docs-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,examples,docs,dev]"
	touch $(STAMP)

$(OLDEST_STAMP): pyproject.toml $(OLDEST_CONSTRAINTS)
	test -x $(OLDEST_BIN)/python || $(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_BIN)/python -m pip install --quiet --upgrade pip
	$(OLDEST_BIN)/python -m pip install --quiet -c $(OLDEST_CONSTRAINTS) -e ".[test]"
	touch $(OLDEST_STAMP)

# torch==2.13.0 first: it is the CPU wheel; relaxit then resolves without pulling CUDA builds.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

demo: $(STAMP)
	$(BIN)/python examples/vae.py
	@echo "figures written to outputs/vae/"

test: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -q tests

# The distributions and inference tests on the oldest supported versions (a few minutes);
# fails unless the environment really holds the pinned versions.
test-oldest: $(OLDEST_STAMP)
	$(OLDEST_BIN)/python -c "import sys; from importlib.metadata import version; \
	pins = [l.strip().split('==') for l in open(sys.argv[1]) if l.strip() and not l.startswith('#')]; \
	bad = [(n, v, version(n)) for n, v in pins if version(n) != v]; \
	print('oldest:', ', '.join(n + ' ' + version(n) for n, _ in pins)); \
	sys.exit(f'not the pinned versions: {bad}' if bad else 0)" $(OLDEST_CONSTRAINTS)
	$(OLDEST_BIN)/python -m pytest -n $(JOBS) -q $(OLDEST_TESTS)

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
	rm -rf $(VENV) $(OLDEST_VENV) docs/_build .pytest_cache
