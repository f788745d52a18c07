"""Issues through the API on SQLite and PostgreSQL: dedup, counts, files, backlog, aging."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from autopack.domain.budgets import BudgetDefaults, RunBudgetDefaults
from autopack.supervisor.service import Supervisor
from tests.conftest import LiveServer, run_body
from tests.integration.helpers import row_counts, tree


def _record(http: httpx.Client, run: str, phase: str, key: str, severity: str = "minor",
            **extra: object) -> httpx.Response:
    body = {"issue_key": key, "severity": severity, "source": "test", "category": "test_failure",
            "evidence_refs": [f"tests/test_x.py::{key}"], **extra}
    return http.post(f"/runs/{run}/phases/{phase}/record_issue", json=body)


def _files(server: LiveServer, run: str) -> dict[str, dict]:
    root = server.settings.runs_dir / run / "issues"
    return {p.name: json.loads(p.read_text()) for p in sorted(root.glob("*.json"))}


def test_repeats_count_once_and_files_follow(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        first = _record(http, "run-1", "P1", "flaky_test__a")
        assert first.status_code == 200, first.text
        assert first.json()["new_in_run"] is True
        _record(http, "run-1", "P2", "schema_drift", "major").raise_for_status()
        again = _record(http, "run-1", "P3", "flaky_test__a", evidence_refs=["log/ci-3.txt"])
        same_phase = _record(http, "run-1", "P1", "flaky_test__a").json()
        index = http.get("/runs/run-1/issues/index").json()
        run = http.get("/runs/run-1").json()
        backlog = http.get("/project/issues/backlog").json()
    assert again.json()["occurrence_count"] == 2 and again.json()["new_in_run"] is False
    assert same_phase["occurrence_count"] == 3 and same_phase["phase_occurrence_count"] == 2
    assert (run["minor_issues_count"], run["major_issues_count"]) == (1, 1)
    assert run["debt_status"] == "has_minor_issues"
    assert [(t["minor_issues_count"], t["major_issues_count"]) for t in run["tiers"]] == [
        (1, 1), (1, 0)]
    assert [(p["minor_issues_count"], p["major_issues_count"], p["issue_state"])
            for p in run["phases"]] == [(1, 0, "has_minor_issues"), (0, 1, "has_major_issues"),
                                        (1, 0, "has_minor_issues")]
    flaky = index["issues_by_key"]["flaky_test__a"]
    assert flaky["occurrence_count"] == 3
    assert (flaky["seen_in_phases"], flaky["seen_in_tiers"]) == (["P1", "P3"], ["T1", "T2"])
    assert (flaky["first_phase_index"], flaky["last_phase_index"]) == (0, 2)
    assert flaky["evidence_refs"] == ["tests/test_x.py::flaky_test__a", "log/ci-3.txt"]
    entry = backlog["issues_by_key"]["flaky_test__a"]
    assert (entry["seen_in_runs"], entry["seen_in_tiers"], entry["occurrence_count"],
            entry["status"]) == (1, 2, 3, "open")
    files = _files(server, "run-1")
    assert files["run_issue_index.json"] == index
    p1 = files["phase_00_P1_issues.json"]
    assert (p1["issue_state"], p1["minor_issue_count"], p1["issues"][0]["occurrence_count"]) == (
        "has_minor_issues", 1, 2)
    assert p1["issues"][0]["first_seen_run"] == "run-1"
    assert files["phase_01_P2_issues.json"]["issues"][0]["effective_severity"] == "major"
    saved = json.loads((server.settings.runs_dir / "project_issue_backlog.json").read_text())
    assert saved == backlog


def test_a_later_run_seeing_a_key_leaves_the_first_runs_files_true(
    server: LiveServer,
) -> None:
    """A phase issue file says what held in its own run, so regenerating it from the
    database gives the same bytes however many runs saw the key since (it used to show
    the project's latest run, which other runs changed without rewriting the file)."""
    with server.client() as http:
        for run in ("run-1", "run-2"):
            http.post("/runs/start", json=run_body(run)).raise_for_status()
        _record(http, "run-1", "P1", "k").raise_for_status()
        path = server.settings.runs_dir / "run-1" / "issues" / "phase_00_P1_issues.json"
        written = path.read_bytes()
        _record(http, "run-2", "P2", "k").raise_for_status()
        backlog = http.get("/project/issues/backlog").json()
    assert backlog["issues_by_key"]["k"]["last_seen_run_id"] == "run-2"
    entry = json.loads(written)["issues"][0]
    assert (entry["first_seen_run"], entry["last_seen_run"]) == ("run-1", "run-1")
    supervisor = Supervisor(server.settings)
    try:
        supervisor.regenerate("run-1")
    finally:
        supervisor.close()
    assert path.read_bytes() == written
    later = _files(server, "run-2")["phase_01_P2_issues.json"]["issues"][0]
    assert (later["first_seen_run"], later["last_seen_run"]) == ("run-1", "run-2")


def test_a_key_seen_as_major_counts_as_major_everywhere(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        _record(http, "run-1", "P1", "k").raise_for_status()
        _record(http, "run-1", "P2", "k", "major").raise_for_status()
        run = http.get("/runs/run-1").json()
    assert (run["minor_issues_count"], run["major_issues_count"]) == (0, 1)
    assert [p["issue_state"] for p in run["phases"][:2]] == ["has_major_issues"] * 2
    phase_file = _files(server, "run-1")["phase_00_P1_issues.json"]
    assert phase_file["major_issue_count"] == 1


def test_phases_without_issues_have_no_issues_files(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    files = _files(server, "run-1")
    assert sorted(files) == ["phase_00_P1_issues.json", "phase_01_P2_issues.json",
                             "phase_02_P3_issues.json", "run_issue_index.json"]
    assert files["phase_02_P3_issues.json"] == {
        "phase_id": "P3", "tier_id": "T2", "issues": [], "minor_issue_count": 0,
        "major_issue_count": 0, "issue_state": "no_issues"}


def test_counts_reported_in_update_status_become_placeholder_issues(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        _record(http, "run-1", "P1", "real_one").raise_for_status()
        http.post("/runs/run-1/phases/P1/update_status",
                  json={"state": "EXECUTING", "minor_issues_count": 3,
                        "major_issues_count": 1}).raise_for_status()
        # Reporting the same numbers again adds nothing.
        http.post("/runs/run-1/phases/P1/update_status",
                  json={"state": "EXECUTING", "minor_issues_count": 3}).raise_for_status()
        index = http.get("/runs/run-1/issues/index").json()
    assert sorted(index["issues_by_key"]) == [
        "real_one", "unspecified_major__P1__1", "unspecified_minor__P1__2",
        "unspecified_minor__P1__3"]
    assert (index["minor_issue_count"], index["major_issue_count"]) == (3, 1)
    assert _files(server, "run-1")["phase_00_P1_issues.json"]["issue_state"] == (
        "has_major_issues")


def test_debt_status_becomes_excess_past_the_minor_cap(server: LiveServer) -> None:
    body = run_body("run-1", tiers=1, phases_per_tier=(1,))
    with server.client() as http:
        http.post("/runs/start", json=body).raise_for_status()  # cap = 1 phase x 3
        statuses = [_record(http, "run-1", "P1", f"k{i}").json()["run"]["debt_status"]
                    for i in range(4)]
    assert statuses == ["has_minor_issues"] * 3 + ["excess_minor_issues"]


def test_aging_flags_resolves_and_reopens(server: LiveServer) -> None:
    def new_run(http: httpx.Client, n: int) -> str:
        run_id = f"run-{n}"
        http.post("/runs/start", json=run_body(run_id, tiers=1, phases_per_tier=(1,),
                                               project_id="proj")).raise_for_status()
        return run_id

    def status(http: httpx.Client) -> tuple[str, int]:
        entry = http.get("/project/issues/backlog", params={"project_id": "proj"}).json()[
            "issues_by_key"]["old_minor"]
        return entry["status"], entry["age_in_runs"]

    with server.client() as http:
        _record(http, new_run(http, 1), "P1", "old_minor").raise_for_status()
        assert status(http) == ("open", 1)
        new_run(http, 2)
        assert status(http) == ("open", 2)
        run3 = new_run(http, 3)  # age 3 = minor_issue_aging_runs_threshold
        assert status(http) == ("needs_cleanup", 3)
        seen = _record(http, run3, "P1", "old_minor").json()
        assert (seen["severity"], seen["effective_severity"]) == ("minor", "major")
        assert seen["run"]["major_issue_count"] == 1
        for n in (4, 5, 6):
            new_run(http, n)
        assert status(http)[0] == "needs_cleanup"
        run7 = new_run(http, 7)  # unseen in runs 4, 5, 6
        assert status(http)[0] == "resolved"
        reopened = _record(http, run7, "P1", "old_minor").json()
        assert reopened["effective_severity"] == "minor"
        assert status(http) == ("open", 1)
        other = http.get("/project/issues/backlog").status_code
    assert other == 404  # the default project has no runs here


def test_an_older_run_seeing_a_key_does_not_move_its_last_sighting_back(
    server: LiveServer,
) -> None:
    """Runs of a project overlap: a still-active older run recording a key the newest
    run saw made the backlog's last sighting the older run, so the key resolved early,
    and reopening it there started its age from that older run."""
    def new_run(http: httpx.Client, n: int) -> str:
        http.post("/runs/start", json=run_body(f"run-{n}", tiers=1, phases_per_tier=(1,),
                                               project_id="proj")).raise_for_status()
        return f"run-{n}"

    def entry(http: httpx.Client) -> dict:
        return http.get("/project/issues/backlog", params={"project_id": "proj"}).json()[
            "issues_by_key"]["k"]

    with server.client() as http:
        for n in (1, 2, 3):
            new_run(http, n)
        _record(http, "run-3", "P1", "k").raise_for_status()
        _record(http, "run-1", "P1", "k").raise_for_status()
        seen = entry(http)
        assert (seen["last_seen_run_id"], seen["first_seen_run_id"]) == ("run-3", "run-3")
        for n in (4, 5, 6):  # unseen in runs 4 and 5: not yet resolve_after_unseen_runs
            new_run(http, n)
        assert entry(http)["status"] == "needs_cleanup"  # aged: opened at run 3
        new_run(http, 7)  # unseen in 4, 5 and 6
        assert entry(http)["status"] == "resolved"
        _record(http, "run-1", "P1", "k").raise_for_status()  # seen again, in an old run
        assert (entry(http)["status"], entry(http)["age_in_runs"]) == ("open", 1)
        assert entry(http)["last_seen_run_id"] == "run-1"
        new_run(http, 8)
        assert (entry(http)["status"], entry(http)["age_in_runs"]) == ("open", 2)


def test_backlog_report_and_issues_command(server: LiveServer, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        _record(http, "run-1", "P1", "a").raise_for_status()
        _record(http, "run-1", "P3", "a").raise_for_status()
        _record(http, "run-1", "P2", "b", "major").raise_for_status()
    env = {**os.environ, "AUTOPACK_DATABASE_URL": server.settings.database_url,
           "AUTOPACK_RUNS_DIR": str(server.settings.runs_dir)}
    autopack = str(Path(sys.executable).with_name("autopack"))
    report = subprocess.run([autopack, "report", "backlog", "--json"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, check=True)
    keys = [(r["issue_key"], r["seen_in_tiers"]) for r in json.loads(report.stdout)["issues"]]
    assert keys == [("a", 2), ("b", 1)]
    issues = subprocess.run([autopack, "issues", "run-1", "--json"], capture_output=True,
                            text=True, env=env, cwd=tmp_path, check=True)
    assert json.loads(issues.stdout)["major_issue_count"] == 1
    human = subprocess.run([autopack, "issues", "run-1"], capture_output=True, text=True,
                           env={**env, "COLUMNS": "200"}, cwd=tmp_path, check=True)
    assert "a" in human.stdout and "P1, P3" in human.stdout


# --- bad input ------------------------------------------------------------------------

def _refused(server: LiveServer, tmp_path: Path, url: str, body: dict, expect: int) -> dict:
    before = (row_counts(server.settings.database_url), tree(tmp_path))
    with server.client() as http:
        response = http.post(url, json=body)
    assert response.status_code == expect, response.text
    assert (row_counts(server.settings.database_url), tree(tmp_path)) == before
    return response.json()


GOOD = {"issue_key": "k", "severity": "minor", "source": "ci", "category": "c"}


@pytest.mark.parametrize(("patch", "field"), [
    ({"severity": "catastrophic"}, "severity"), ({"source": "rumour"}, "source"),
    ({"issue_key": "../x"}, "issue_key"), ({"issue_key": "a b"}, "issue_key"),
    ({"issue_key": "k" * 201}, "issue_key"), ({"issue_key": ""}, "issue_key"),
    ({"category": "Not A Category"}, "category"),
    ({"evidence_refs": ["x"] * 21}, "evidence_refs"),
    ({"evidence_refs": ["x" * 501]}, "evidence_refs"),
    ({"description": "d" * 4001}, "description"), ({"extra": 1}, "extra"),
])
def test_bad_issue_is_422_naming_the_field(server: LiveServer, tmp_path: Path, patch: dict,
                                           field: str) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    detail = _refused(server, tmp_path, "/runs/run-1/phases/P1/record_issue",
                      {**GOOD, **patch}, 422)
    assert field in detail["detail"][0]["loc"], detail


def test_issue_for_unknown_run_or_phase_is_404_and_creates_nothing(
    server: LiveServer, tmp_path: Path
) -> None:
    _refused(server, tmp_path, "/runs/ghost/phases/P1/record_issue", GOOD, 404)
    assert not (server.settings.runs_dir / "ghost").exists()
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    _refused(server, tmp_path, "/runs/run-1/phases/P9/record_issue", GOOD, 404)


def test_issue_in_a_terminal_run_is_409(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1", tiers=1, phases_per_tier=(1,)))
        http.post("/runs/run-1/phases/P1/update_status", json={"state": "SKIPPED"})
    _refused(server, tmp_path, "/runs/run-1/phases/P1/record_issue", GOOD, 409)


def test_a_count_adding_over_100_unkeyed_issues_is_422_and_changes_nothing(
    server: LiveServer, tmp_path: Path
) -> None:
    """Each placeholder is recorded like a keyed issue: one request of a huge count
    would hold the writer for minutes."""
    server.settings.budgets = BudgetDefaults(  # room for them (past it the run fails)
        run=RunBudgetDefaults(max_minor_issues_total=10_000))
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        http.post("/runs/run-1/phases/P1/update_status",
                  json={"state": "EXECUTING", "minor_issues_count": 100}).raise_for_status()
    for field in ("minor_issues_count", "major_issues_count"):
        body = {"state": "GATE", field: 2**31 - 1}
        detail = _refused(server, tmp_path, "/runs/run-1/phases/P1/update_status", body, 422)
        assert detail["field"] == field, detail
        assert "record_issue" in detail["detail"]
    detail = _refused(server, tmp_path, "/runs/run-1/phases/P1/update_status",
                      {"state": "GATE", "minor_issues_count": 201}, 422)
    assert "would add 101 issues" in detail["detail"]
    with server.client() as http:  # up to 100 more in one request is fine
        moved = http.post("/runs/run-1/phases/P1/update_status",
                          json={"state": "GATE", "minor_issues_count": 200})
        moved.raise_for_status()
    assert moved.json()["phase"]["minor_issues_count"] == 200
