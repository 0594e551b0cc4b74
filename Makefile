# dispatchlab: every target creates/refreshes .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format bench venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[all]'
	@touch $(STAMP)

venv: $(STAMP)

## Start the service on SQLite with a demo scenario loaded.
run: $(STAMP)
	$(BIN)/dispatchlab demo

## Install everything and run the test suite on 2 xdist workers (slow tests excluded;
## `PYTEST_ARGS="-m slow"`: only them; `PYTEST_ARGS="-m 'slow or not slow'"`: all).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Static checks: ruff lint, ruff format check, mypy.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Reproducible benchmarks (writes benchmarks/results/).
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
