"""Ids, slugs, budget defaults and overrides, and run-spec validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from autopack.artefacts.layout import RunLayout
from autopack.domain.budgets import BudgetDefaults, run_caps, tier_caps
from autopack.domain.categories import SafetyProfile
from autopack.domain.errors import PolicyViolation
from autopack.domain.ids import is_valid_id, names_a_runs_folder_file, slug
from autopack.domain.problems import problems
from autopack.plan.spec import RunSpec
from autopack.settings import Settings

BAD_IDS = ["", "../x", "..", "a/b", "/etc/passwd", "a\x00b", "a b", "x" * 10_000, "a\n",
           ".hidden", "-x", "é", "a\\b"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_are_refused(bad: str) -> None:
    assert not is_valid_id(bad)


@pytest.mark.parametrize("good", ["a", "run-1", "R_2.x", "9", "a" * 128])
def test_good_ids_are_accepted(good: str) -> None:
    assert is_valid_id(good)


@given(st.text(max_size=200))
def test_valid_ids_never_escape_the_runs_folder(text: str) -> None:
    if is_valid_id(text) and not names_a_runs_folder_file(text):
        assert RunLayout(Path("/srv/runs"), text).root.parent.as_posix() == "/srv/runs"
    else:
        with pytest.raises((ValueError, PolicyViolation)):
            RunLayout(Path("/srv/runs"), text)


@pytest.mark.parametrize(("run_id", "taken"), [
    ("project_issue_backlog.json", True), ("project_issue_backlog.web.json", True),
    ("PROJECT_ISSUE_BACKLOG.JSON", True), ("project_issue_backlog", False),
    ("project_issue_backlog.json.old", False), ("my_project_issue_backlog.json", False),
])
def test_a_run_may_not_take_the_place_of_a_backlog_file(run_id: str, taken: bool) -> None:
    assert names_a_runs_folder_file(run_id) is taken
    if taken:
        with pytest.raises(PolicyViolation, match="names a file of the runs folder"):
            RunLayout(Path("/srv/runs"), run_id)
        with pytest.raises(ValidationError, match="backlog file"):
            RunSpec.model_validate({"run": {"run_id": run_id}, "tiers": [], "phases": []})
    else:
        RunLayout(Path("/srv/runs"), run_id)


def test_slug_is_filesystem_safe() -> None:
    assert slug("Storage & Models / v2", "t") == "storage_models_v2"
    assert slug("../../etc", "t") == "etc"
    assert slug("!!!", "fallback") == "fallback"
    assert len(slug("x" * 500, "t")) == 60


def test_budget_defaults_are_the_specs() -> None:
    d = BudgetDefaults()
    caps = run_caps(d, phase_count=4)
    assert (caps.token_cap, caps.max_phases, caps.max_duration_minutes,
            caps.max_minor_issues_total) == (5_000_000, 25, 120, 12)
    normal = tier_caps(d, [100, 200, 300], SafetyProfile.NORMAL)
    assert (normal.token_cap, normal.ci_run_cap, normal.max_minor_issues_tolerated,
            normal.max_major_issues_tolerated) == (1800, 6, 6, None)
    critical = tier_caps(d, [100, 200, 300], SafetyProfile.SAFETY_CRITICAL)
    assert (critical.max_minor_issues_tolerated, critical.max_major_issues_tolerated) == (3, 0)


def test_explicit_run_values_win_over_defaults() -> None:
    caps = run_caps(BudgetDefaults(), 2, token_cap=10, max_phases=3, max_duration_minutes=0.5)
    assert (caps.token_cap, caps.max_phases, caps.max_duration_minutes) == (10, 3, 0.5)


def test_every_budget_is_overridable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPACK_BUDGETS__RUN__TOKEN_CAP", "1234")
    monkeypatch.setenv("AUTOPACK_BUDGETS__RUN__MAX_MINOR_ISSUES_TOTAL", "7")
    monkeypatch.setenv("AUTOPACK_BUDGETS__TIER__TOKEN_CAP_MULTIPLIER", "5")
    monkeypatch.setenv("AUTOPACK_BUDGETS__PHASE__INCIDENT_TOKEN_CAP", "10")
    budgets = Settings().budgets
    assert run_caps(budgets, 3).token_cap == 1234
    assert run_caps(budgets, 3).max_minor_issues_total == 7
    assert tier_caps(budgets, [budgets.phase.incident_token_cap] * 2,
                     SafetyProfile.NORMAL).token_cap == 100


def test_zero_or_negative_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPACK_BUDGETS__RUN__TOKEN_CAP", "0")
    with pytest.raises(ValidationError, match="token_cap"):
        Settings()


def _spec(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "run": {"run_id": "r"},
        "tiers": [{"tier_id": "T1", "tier_index": 0, "name": "one"}],
        "phases": [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "p"}],
    }
    body.update(changes)
    return body


def test_spec_names_every_inconsistency() -> None:
    phases = [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "p"},
              {"phase_id": "P1", "phase_index": 0, "tier_id": "T9", "name": "q"}]
    with pytest.raises(ValidationError) as caught:
        RunSpec.model_validate(_spec(phases=phases))
    text = str(caught.value)
    assert "phases[1].phase_id: duplicate 'P1'" in text
    assert "phases[1].phase_index: duplicate 0" in text
    assert "phases[1].tier_id: unknown tier 'T9'" in text
    assert problems(caught.value) == [
        (("phases", 1, "phase_id"), "duplicate 'P1'"),
        (("phases", 1, "phase_index"), "duplicate 0"),
        (("phases", 1, "tier_id"), "unknown tier 'T9'")]


def test_spec_refuses_unknown_fields_and_labels() -> None:
    with pytest.raises(ValidationError, match="extra"):
        RunSpec.model_validate(_spec(surprise=1))
    phases = [{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "p",
               "task_category": "mystery"}]
    with pytest.raises(ValidationError, match="task_category"):
        RunSpec.model_validate(_spec(phases=phases))
