# Two commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/$(VENV)/bin

.PHONY: install test lint typecheck unit demo probe bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check src tests benchmarks

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(PY) -m pytest

unit: install
	$(PY) -m pytest tests/unit

# The whole lifecycle on the bundled example, offline, in .demo/calculator.
demo: install
	rm -rf .demo
	AUTOPACK_DATA_DIR="$(CURDIR)/.demo/data" $(BIN)/autopack demo --dir "$(CURDIR)/.demo/calculator"

# The probe scripts, each on its own server over one embedded database under .demo/probes.
probe: install
	rm -rf .demo/probes
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo/probes" bash scripts/autonomous_probe_run_state.sh
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo/probes" bash scripts/autonomous_probe_issues.sh
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo/probes" bash scripts/autonomous_probe_strategy.sh
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo/probes" bash scripts/autonomous_probe_ci_promotion.sh

bench: install
	$(PY) benchmarks/api_bench.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache .hypothesis
