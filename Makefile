# Two commands matter: `make demo` and `make test`. Both bootstrap .venv on first use:
# the demo needs only the core (msgspec, pydantic, pyyaml); the tests install every extra.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.core
STAMP := $(VENV)/.installed
LINT_PATHS := src adapters tests bench examples specs fuzz envs
# Everything but TLC, PostgreSQL, etcd, the real frameworks and the long process tests.
FAST := -m "not slow" --ignore=tests/adapters --ignore=tests/test_specs.py \
        --ignore=tests/test_postgres.py --ignore=tests/hardening

.PHONY: demo test test-envs test-fast lint format specs bench clean

$(CORE): pyproject.toml
	@$(PY) -m venv $(VENV)
	@echo "(first run: installing the core into .venv)"; $(BIN)/pip install -q --disable-pip-version-check -e .
	@touch $(CORE)

# The full set resolves in seconds with uv (pinned in the dev extra, installed here first); pip's
# resolver took over 10 minutes backtracking through the co-installed frameworks.
UV_VERSION := $(shell sed -n 's/.*"uv==\([0-9.]*\)".*/\1/p' pyproject.toml)
$(STAMP): pyproject.toml $(CORE)
	$(BIN)/pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[all,dev,bench]'
	touch $(STAMP)

# System packages the tests need (listed in scripts/setup-system.sh): installed as root
# with apt (the .ci/deps.d snippets), else named with the command that installs them, before pytest.
.PHONY: system-deps
system-deps:
	@PY=$(PY) bash scripts/setup-system.sh

demo: $(CORE)
	@$(BIN)/fencedstate demo

# The co-installed suite, then each adapter alone in its own environment (envs/matrix.toml):
# both always run; the first failure's status is the result.
test: system-deps $(STAMP)  # system packages first: they include Python's venv
	@status=0; \
	$(BIN)/python -m pytest $$($(BIN)/python envs/run.py --coinstalled-ignores) || status=$$?; \
	$(BIN)/python envs/run.py || { rc=$$?; [ $$status -ne 0 ] || status=$$rc; }; \
	exit $$status

# Some isolated environments only: make test-envs ENVS="mcp1 mcp2"
test-envs: $(STAMP)
	$(BIN)/python envs/run.py $(ENVS)

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
	rm -rf $(VENV) .envs build *.egg-info .pytest_cache .mypy_cache .ruff_cache
