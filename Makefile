# The README's two commands: `make demo` and `make test`. Each builds .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv installs the same packages from PyPI several times faster than pip (pip stays in .venv).
$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
INSTALL := $(BIN)/uv pip install --quiet --python $(BIN)/python

# Reinstall only when the package metadata changed.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[test]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[demo]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(INSTALL) -e '.[test,bench]'
	touch $@

$(VENV)/.installed-dist: pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[dist]'
	touch $@

$(VENV)/.installed-matrix: pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[matrix]'
	touch $@

lint: $(VENV)/.installed-test
	$(BIN)/ruff check asyncbridge_ext tests notebooks benchmarks noxfile.py

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest --nbval --nbval-current-env tests notebooks

test: lint typecheck pytest

demo: $(VENV)/.installed-demo
	$(BIN)/python notebooks/show.py notebooks/quickstart.ipynb

# Python 3.12-3.15 x newest IPython/ipykernel, Colab's pins (the declared floors) and
# Databricks' on 3.12, each in a uv-built venv under .nox/ (reused), two at a time
# (MATRIX_JOBS), then .ci/matrix-results.md. See noxfile.py; NOX_ARGS='-s "tests(colab)"'
# runs one.
.PHONY: test-matrix
test-matrix: $(VENV)/.installed-matrix
	$(BIN)/nox $(NOX_ARGS)

# The sdist and the wheel in dist/, built from a clean tree as a release would be.
dist: $(VENV)/.installed-dist
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# `make bench BENCH_PYTHON=/opt/python3.14/bin/python3.14`: the same figures on another
# Python, from a venv of its own (.venv-bench-python3.14, built on first use), written to
# benchmarks/results/python3.14/ so that the dev venv's latest.md stays.
BENCH_PYTHON ?=
ifeq ($(BENCH_PYTHON),)
bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run.py
else
BENCH_VENV := .venv-bench-$(notdir $(BENCH_PYTHON))
bench: pyproject.toml | $(BIN)/uv
	test -x $(BENCH_VENV)/bin/python || $(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BIN)/uv pip install --quiet --python $(BENCH_VENV)/bin/python -e '.[test,bench]'
	$(BENCH_VENV)/bin/python benchmarks/run.py --out benchmarks/results/$(notdir $(BENCH_PYTHON))
endif

clean:
	rm -rf $(VENV) .nox .pytest_cache .mypy_cache .ruff_cache build dist
