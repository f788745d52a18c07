"""Golden strategies of three sample projects (tests/data/strategy/*): feature work under
`normal`, auth work under `safety_critical`, a large cross-cutting refactor (split, with
an aged backlog). Set AUTOPACK_UPDATE_GOLDEN=1 to rewrite them after a deliberate change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autopack.plan.spec import load_run_spec
from autopack.strategy.engine import BacklogItem, StrategyInput, compile_strategy, to_json
from autopack.strategy.ruleset import BUILTIN, load_ruleset

DATA = Path(__file__).resolve().parents[1] / "data" / "strategy"


@pytest.mark.parametrize("project", ["feature_normal", "auth_safety_critical", "large_refactor"])
def test_golden_strategy(project: str) -> None:
    folder = DATA / project
    ruleset_file = folder / "ruleset.json"
    rules = load_ruleset(ruleset_file) if ruleset_file.exists() else BUILTIN
    backlog_file = folder / "backlog.json"
    backlog = tuple(BacklogItem(**{**b, "evidence_refs": tuple(b["evidence_refs"])})
                    for b in json.loads(backlog_file.read_text())) if backlog_file.exists() else ()
    compiled = to_json(compile_strategy(StrategyInput(
        load_run_spec(folder / "plan.json"), rules,
        "ruleset.json" if ruleset_file.exists() else "builtin", backlog)))
    golden = folder / "strategy.json"
    if os.environ.get("AUTOPACK_UPDATE_GOLDEN") == "1":
        golden.write_text(compiled)
    assert golden.read_text() == compiled
