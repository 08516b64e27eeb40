# Two commands matter: `make demo` and `make test`. Both bootstrap .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint specs bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fencedstate demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src
	$(BIN)/mypy --strict src/fencedstate

specs: $(STAMP)
	$(BIN)/python specs/check.py

bench: $(STAMP)
	$(BIN)/python bench/commit_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
