"""200 concurrent record_issue calls over 20 overlapping keys on one run."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from autopack.supervisor.service import Supervisor
from tests.conftest import LiveServer, run_body
from tests.integration.helpers import views

CALLS, KEYS = 200, 20


def _call(i: int) -> tuple[str, str, str]:
    key = f"key_{i % KEYS:02d}"
    phase = f"P{1 + i % 3}"
    severity = "major" if i % KEYS < 5 else "minor"
    return key, phase, severity


def test_two_hundred_concurrent_records(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    barrier = threading.Barrier(50)

    def call(i: int) -> httpx.Response:
        key, phase, severity = _call(i)
        with httpx.Client(base_url=server.url, timeout=120) as http:
            if i < 50:
                barrier.wait()
            return http.post(f"/runs/run-1/phases/{phase}/record_issue",
                             json={"issue_key": key, "severity": severity, "source": "ci",
                                   "category": "test_failure", "evidence_refs": [f"log/{i}"]})

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(call, range(CALLS)))
    assert Counter(r.status_code for r in responses) == {200: CALLS}

    with server.client() as http:
        index = http.get("/runs/run-1/issues/index").json()
        run = http.get("/runs/run-1").json()
        backlog = http.get("/project/issues/backlog").json()
    issues = index["issues_by_key"]
    assert len(issues) == KEYS
    assert sum(i["occurrence_count"] for i in issues.values()) == CALLS
    assert (index["minor_issue_count"], index["major_issue_count"]) == (15, 5)
    assert (run["minor_issues_count"], run["major_issues_count"]) == (15, 5)
    for phase in run["phases"]:
        expected = {_call(i)[0] for i in range(CALLS) if _call(i)[1] == phase["phase_id"]}
        majors = {k for k in expected if int(k[-2:]) < 5}
        assert (phase["minor_issues_count"], phase["major_issues_count"]) == (
            len(expected - majors), len(majors))
    assert sum(e["occurrence_count"] for e in backlog["issues_by_key"].values()) == CALLS
    assert all(e["seen_in_runs"] == 1 for e in backlog["issues_by_key"].values())

    # Every file is valid JSON and equal to what the database says.
    root = server.settings.runs_dir
    assert json.loads((root / "run-1" / "issues" / "run_issue_index.json").read_text()) == index
    assert json.loads((root / "project_issue_backlog.json").read_text()) == backlog
    for path in (root / "run-1" / "issues").glob("*.json"):
        json.loads(path.read_text())
    written = views(root)
    supervisor = Supervisor(server.settings)
    try:
        supervisor.regenerate("run-1")  # what the database says, written afresh
    finally:
        supervisor.close()
    assert views(root) == written
    assert not list(root.rglob("*.tmp"))
