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

# Until the run engine exists, the demo is the probes (run state machine, issues, strategy,
# promotion decisions), each on its own server over one embedded database kept with the
# artefacts under .demo/.
demo: install
	rm -rf .demo
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo" bash scripts/autonomous_probe_run_state.sh
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo" bash scripts/autonomous_probe_issues.sh
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo" bash scripts/autonomous_probe_strategy.sh
	PATH="$(BIN):$$PATH" AUTOPACK_PROBE_DIR="$(CURDIR)/.demo" bash scripts/autonomous_probe_ci_promotion.sh
	@echo
	@echo "Look around:"
	@echo "  AUTOPACK_DATABASE_URL=sqlite:///$(CURDIR)/.demo/autopack.db $(BIN)/autopack runs"
	@echo "  ls .demo/.autonomous_runs/*/ && cat .demo/.autonomous_runs/*/run_summary.md"
	@echo "  cat .demo/.autonomous_runs/*/issues/run_issue_index.json"

probe: demo

bench: install
	$(PY) benchmarks/api_bench.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache .hypothesis
