"""The probe scripts, end to end: each starts its own server on its own SQLite database
and drives it through the API and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _probe(name: str, work: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOPACK_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AUTOPACK_PROBE_DIR"] = str(work)
    result = subprocess.run(["bash", str(ROOT / "scripts" / name)], capture_output=True,
                            text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROBE PASSED" in result.stdout
    return result.stdout


def test_strategy_probe_passes(tmp_path: Path) -> None:
    out = _probe("autonomous_probe_strategy.sh", tmp_path)
    assert "P1 ci_profile = strict" in out and "P1 auditor_profile = orchestrator_review" in out
    assert not list((tmp_path / ".autonomous_runs").glob("*/run_summary.md"))


def test_ci_promotion_probe_passes(tmp_path: Path) -> None:
    out = _probe("autonomous_probe_ci_promotion.sh", tmp_path)
    assert "excess minor-issue debt: exit = 1" in out and "all clean: exit = 0" in out


@pytest.mark.parametrize("name", ["autonomous_probe_run_state.sh", "autonomous_probe_issues.sh"])
def test_probe_passes(name: str, tmp_path: Path) -> None:
    _probe(name, tmp_path)
    runs = tmp_path / ".autonomous_runs"
    [summary] = runs.glob("*/run_summary.md")
    [index] = runs.glob("*/issues/run_issue_index.json")
    if name == "autonomous_probe_run_state.sh":
        assert "| state | `DONE_SUCCESS` |" in summary.read_text()
    else:
        assert json.loads(index.read_text())["minor_issue_count"] == 1
