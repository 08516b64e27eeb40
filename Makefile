# Two commands matter: `make demo` and `make test`. Both bootstrap .venv on first use:
# the demo needs only the core (msgspec, pydantic, pyyaml); the tests install every extra.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.core
STAMP := $(VENV)/.installed
LINT_PATHS := src adapters tests bench examples specs fuzz
# Everything but TLC, PostgreSQL, etcd, the real frameworks and the long process tests.
FAST := -m "not slow" --ignore=tests/adapters --ignore=tests/test_specs.py \
        --ignore=tests/test_postgres.py --ignore=tests/hardening

.PHONY: demo test test-fast lint format specs bench clean

$(CORE): pyproject.toml
	@$(PY) -m venv $(VENV)
	@echo "(first run: installing the core into .venv)"; $(BIN)/pip install -q --disable-pip-version-check -e .
	@touch $(CORE)

$(STAMP): pyproject.toml $(CORE)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q -e '.[all,dev,bench]'
	touch $(STAMP)

# System packages the tests need (Java, PostgreSQL, etcd, libfiu, faketime): installed as root
# with apt (the .ci/deps.d snippets), else named with the command that installs them, before pytest.
.PHONY: system-deps
system-deps:
	@bash scripts/setup-system.sh
test: system-deps

demo: $(CORE)
	@$(BIN)/fencedstate demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(FAST)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy --strict src/fencedstate

format: $(STAMP)
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

specs: $(STAMP)
	$(BIN)/python specs/check.py

bench: $(STAMP)
	$(BIN)/python bench/commit_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
