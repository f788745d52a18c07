"""50 concurrent moves of one phase: no 5xx, no lost update, files equal to the DB."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import LiveServer, run_body

CALLS = 50


def test_fifty_concurrent_updates_of_one_phase(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        http.post("/runs/run-1/phases/P1/update_status",
                  json={"state": "EXECUTING"}).raise_for_status()
    barrier = threading.Barrier(CALLS)

    def call(i: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            barrier.wait()
            return http.post("/runs/run-1/phases/P1/update_status",
                             json={"state": "GATE", "tokens_used": 1000 + i,
                                   "builder_attempts": 1})

    with ThreadPoolExecutor(CALLS) as pool:
        responses = list(pool.map(call, range(CALLS)))

    assert [r.status_code for r in responses] == [200] * CALLS, {r.text for r in responses}
    assert sum(r.json()["transitioned"] for r in responses) == 1
    with server.client() as http:
        run = http.get("/runs/run-1").json()
        events = http.get("/runs/run-1/events").json()
    phase = run["phases"][0]
    assert phase["state"] == "GATE"
    assert [(e["from_state"], e["to_state"]) for e in events
            if e["entity"] == "phase" and e["entity_id"] == "P1"] == [
        (None, "QUEUED"), ("QUEUED", "EXECUTING"), ("EXECUTING", "GATE")]
    assert [(e["from_state"], e["to_state"]) for e in events if e["entity"] == "run"][-1] == (
        "PHASE_EXECUTION", "GATE")
    # No lost update: the run and tier totals are the sum of their phases' counters.
    assert run["tokens_used"] == sum(p["tokens_used"] for p in run["phases"])
    assert run["tiers"][0]["tokens_used"] == sum(
        p["tokens_used"] for p in run["phases"] if p["tier_id"] == "T1")
    assert phase["tokens_used"] in {1000 + i for i in range(CALLS)}
    text = (server.settings.runs_dir / "run-1" / "phases" / "phase_00_P1.md").read_text()
    assert "| state | `GATE` |" in text
    assert re.search(rf"^\| tokens \| {phase['tokens_used']} / ", text, re.MULTILINE), text
    summary = (server.settings.runs_dir / "run-1" / "run_summary.md").read_text()
    assert f"| tokens | {run['tokens_used']} / " in summary


def test_fifty_concurrent_starts_of_one_run_id(server: LiveServer) -> None:
    barrier = threading.Barrier(CALLS)

    def call(i: int) -> httpx.Response:
        body = run_body("same", tiers=1, phases_per_tier=(1 + i % 3,))
        with httpx.Client(base_url=server.url, timeout=120) as http:
            barrier.wait()
            return http.post("/runs/start", json=body)

    with ThreadPoolExecutor(CALLS) as pool:
        codes = sorted(r.status_code for r in pool.map(call, range(CALLS)))
    assert codes == [201] + [409] * (CALLS - 1)
    with server.client() as http:
        events = http.get("/runs/same/events").json()
    assert len([e for e in events if e["entity"] == "run"]) == 3
