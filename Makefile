# The README's two commands: `make demo` and `make test`. Each builds .venv when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the package metadata changed.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

lint: $(VENV)/.installed-test
	$(BIN)/ruff check asyncbridge_ext tests notebooks benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest --nbval --nbval-current-env tests notebooks

test: lint typecheck pytest

demo: $(VENV)/.installed-demo
	$(BIN)/python notebooks/show.py notebooks/quickstart.ipynb

# Python 3.10/3.12/3.13 x newest IPython/ipykernel, plus IPython 8 + ipykernel 6 on 3.10,
# each in .venv-matrix/ (reused while pyproject.toml is unchanged). See .ci/matrix.py.
.PHONY: test-matrix
test-matrix:
	$(PYTHON) .ci/matrix.py $(MATRIX_ARGS)

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-matrix .pytest_cache .mypy_cache .ruff_cache build dist
