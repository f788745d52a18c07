"""The seed's run API against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from autopack.artefacts.layout import RunLayout
from tests.conftest import LiveServer, run_body
from tests.integration.helpers import row_counts, tree, views

WALK = ["EXECUTING", "GATE", "CI_RUNNING", "COMPLETE"]


def _state_in_file(path: Path) -> str:
    match = re.search(r"^\| state \| `([A-Z_]+)` \|$", path.read_text(), re.MULTILINE)
    assert match, path
    return match.group(1)


def test_start_returns_the_full_nested_run_and_writes_its_folder(server: LiveServer) -> None:
    with server.client() as http:
        response = http.post("/runs/start", json=run_body("run-1"))
    assert response.status_code == 201
    run = response.json()
    assert run["run_id"] == "run-1"
    assert run["state"] == "PHASE_QUEUEING"
    assert (run["token_cap"], run["max_phases"], run["max_duration_minutes"]) == (5_000_000, 25,
                                                                                   120)
    assert [t["state"] for t in run["tiers"]] == ["PENDING", "PENDING"]
    assert [(p["phase_id"], p["tier_id"], p["state"]) for p in run["phases"]] == [
        ("P1", "T1", "QUEUED"), ("P2", "T1", "QUEUED"), ("P3", "T2", "QUEUED")]
    assert run["tiers"][0]["token_cap"] == 3 * 2 * run["phases"][0]["incident_token_cap"]
    assert run["tiers"][0]["ci_run_cap"] == 4
    root = server.settings.runs_dir / "run-1"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md")) == [
        "phases/phase_00_P1.md", "phases/phase_01_P2.md", "phases/phase_02_P3.md",
        "run_summary.md", "tiers/tier_00_tier_1_work.md", "tiers/tier_01_tier_2_work.md"]
    assert (root / "issues").is_dir()
    assert _state_in_file(root / "run_summary.md") == "PHASE_QUEUEING"


def test_walking_every_phase_ends_the_run_in_done_success(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        seen = []
        for phase in ("P1", "P2", "P3"):
            for state in WALK:
                r = http.post(f"/runs/run-1/phases/{phase}/update_status",
                              json={"state": state, "tokens_used": 100, "builder_attempts": 1})
                assert r.status_code == 200, r.text
                seen.append((r.json()["tier_state"], r.json()["run_state"]))
        run = http.get("/runs/run-1").json()
        events = http.get("/runs/run-1/events").json()
    assert seen[0] == ("IN_PROGRESS", "PHASE_EXECUTION")
    assert seen[7] == ("COMPLETE", "SNAPSHOT_CREATED")
    assert seen[-1] == ("COMPLETE", "DONE_SUCCESS")
    assert run["state"] == "DONE_SUCCESS" and run["completed_at"] is not None
    assert run["tokens_used"] == 300
    assert [t["tokens_used"] for t in run["tiers"]] == [200, 100]
    run_moves = [(e["from_state"], e["to_state"]) for e in events if e["entity"] == "run"]
    assert run_moves[:3] == [(None, "PLAN_BOOTSTRAP"), ("PLAN_BOOTSTRAP", "RUN_CREATED"),
                             ("RUN_CREATED", "PHASE_QUEUEING")]
    assert run_moves[-1] == ("SNAPSHOT_CREATED", "DONE_SUCCESS")
    assert len([e for e in events if e["entity"] == "phase" and e["from_state"]]) == 12
    root = server.settings.runs_dir / "run-1"
    assert _state_in_file(root / "run_summary.md") == "DONE_SUCCESS"
    assert _state_in_file(root / "phases" / "phase_02_P3.md") == "COMPLETE"
    assert _state_in_file(root / "tiers" / "tier_01_tier_2_work.md") == "COMPLETE"


def test_a_failed_phase_fails_its_tier_and_ends_the_run_failed(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        http.post("/runs/run-1/phases/P1/update_status", json={"state": "EXECUTING"})
        r = http.post("/runs/run-1/phases/P1/update_status", json={"state": "FAILED"})
        assert (r.json()["tier_state"], r.json()["run_state"]) == ("FAILED", "PHASE_EXECUTION")
        http.post("/runs/run-1/phases/P2/update_status", json={"state": "SKIPPED"})
        r = http.post("/runs/run-1/phases/P3/update_status", json={"state": "SKIPPED"})
        run = http.get("/runs/run-1").json()
    assert r.json()["run_state"] == "DONE_FAILED_BUILD_FAILURE"
    assert [t["state"] for t in run["tiers"]] == ["FAILED", "SKIPPED"]
    assert run["failure_reason"] == "BUILD_FAILURE"


def test_only_one_phase_is_active_at_a_time(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        http.post("/runs/run-1/phases/P1/update_status", json={"state": "EXECUTING"})
        r = http.post("/runs/run-1/phases/P2/update_status", json={"state": "EXECUTING"})
    assert r.status_code == 409
    assert "one phase at a time" in r.json()["detail"]


def test_reporting_counters_without_a_move_adds_no_event(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        http.post("/runs/run-1/phases/P1/update_status", json={"state": "EXECUTING"})
        before = len(http.get("/runs/run-1/events").json())
        r = http.post("/runs/run-1/phases/P1/update_status",
                      json={"state": "EXECUTING", "tokens_used": 42})
        after = http.get("/runs/run-1/events").json()
        run = http.get("/runs/run-1").json()
    assert r.status_code == 200 and r.json()["transitioned"] is False
    assert len(after) == before
    assert run["tokens_used"] == 42 and run["phases"][0]["tokens_used"] == 42


# --- bad input: a clear error, and nothing written anywhere -----------------------------

BAD_IDS = {
    "dotdot": "../x", "slash": "a/b", "absolute": "/etc/passwd", "empty": "",
    "nul": "a\x00b", "space": "a b", "huge": "x" * 10_000, "newline": "a\n",
}


def _refused_without_trace(server: LiveServer, tmp_path: Path, method: str, url: str,
                           expect: int, **kwargs: object) -> dict:
    before = (row_counts(server.settings.database_url), tree(tmp_path))
    with server.client() as http:
        response = http.request(method, url, **kwargs)
    assert response.status_code == expect, response.text
    assert (row_counts(server.settings.database_url), tree(tmp_path)) == before
    if expect == 422:  # every 422, whoever refused it, names the field the same way
        assert "field" in response.json(), response.text
    return response.json()


def _refused_text(server: LiveServer, tmp_path: Path, url: str, content: bytes,
                  expect: int = 422) -> dict:
    """`_refused_without_trace` for a JSON body sent as the bytes given."""
    return _refused_without_trace(server, tmp_path, "POST", url, expect, content=content,
                                  headers={"content-type": "application/json"})


@pytest.mark.parametrize("field", ["run_id", "tier_id", "phase_id"])
@pytest.mark.parametrize("bad", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_bad_ids_are_422_naming_the_field(server: LiveServer, tmp_path: Path, field: str,
                                          bad: str) -> None:
    body = run_body("run-1", tiers=1, phases_per_tier=(1,))
    if field == "run_id":
        body["run"]["run_id"] = bad  # type: ignore[index]
    elif field == "tier_id":
        body["tiers"][0]["tier_id"] = bad  # type: ignore[index]
        body["phases"][0]["tier_id"] = bad  # type: ignore[index]
    else:
        body["phases"][0]["phase_id"] = bad  # type: ignore[index]
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    assert any(error["loc"][-1] == field for error in detail["detail"]), detail
    assert not (tmp_path / "x").exists() and not (server.settings.runs_dir).exists()


@pytest.mark.parametrize("run_id", ["project_issue_backlog.json",
                                    "project_issue_backlog.q.json",
                                    "Project_Issue_Backlog.JSON"])
def test_a_run_id_naming_a_backlog_file_is_422(server: LiveServer, tmp_path: Path,
                                               run_id: str) -> None:
    """Such a run's folder would take the place of a project's backlog file in the runs
    folder (its first write failed after the run was saved; as `.q.json`, the backlog
    write of project q swapped the run's folder away)."""
    with server.client() as http:  # the default project's backlog file exists
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    body = run_body(run_id)
    body["run"]["project_id"] = "q"  # type: ignore[index]
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    [error] = detail["detail"]
    assert error["loc"] == ["body", "run", "run_id"] and "backlog file" in error["msg"]
    with server.client() as http:
        body["run"]["run_id"] = "q-run"  # type: ignore[index]
        assert http.post("/runs/start", json=body).status_code == 201
    assert (server.settings.runs_dir / "project_issue_backlog.q.json").is_file()


def test_duplicate_run_id_is_409_and_the_first_run_is_untouched(server: LiveServer,
                                                                tmp_path: Path) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    other = run_body("run-1", tiers=1, phases_per_tier=(1,))
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 409, json=other)
    assert "already exists" in detail["detail"]
    with server.client() as http:
        assert len(http.get("/runs/run-1").json()["phases"]) == 3


@pytest.mark.parametrize(("mutate", "field", "message"), [
    (lambda b: b["phases"][1].update(phase_id="P1"), "phases[1].phase_id", "duplicate 'P1'"),
    (lambda b: b["tiers"][1].update(tier_id="T1"), "tiers[1].tier_id", "duplicate 'T1'"),
    (lambda b: b["phases"][1].update(phase_index=0), "phases[1].phase_index", "duplicate 0"),
    (lambda b: b["tiers"][1].update(tier_index=0), "tiers[1].tier_index", "duplicate 0"),
    (lambda b: b["phases"][2].update(tier_id="T9"), "phases[2].tier_id", "unknown tier 'T9'"),
], ids=["dup-phase", "dup-tier", "dup-phase-index", "dup-tier-index", "unknown-tier"])
def test_inconsistent_run_is_422_and_does_not_exist(server: LiveServer, tmp_path: Path,
                                                    mutate: object, field: str,
                                                    message: str) -> None:
    """Problems found across fields are located like any other: `field` and each entry's
    `loc` name the exact field, not the whole body."""
    body = run_body("run-1")
    mutate(body)  # type: ignore[operator]
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    assert detail["field"] == field, detail
    error = detail["detail"][0]
    name, position, key = field.replace("[", ".").replace("]", "").split(".")
    assert error["loc"] == ["body", name, int(position), key] and error["msg"] == message
    with server.client() as http:
        assert http.get("/runs/run-1").status_code == 404


@pytest.mark.parametrize(("patch", "field"), [
    ({"token_cap": -1}, "token_cap"), ({"max_phases": 0}, "max_phases"),
    ({"max_duration_minutes": -5}, "max_duration_minutes"),
    ({"safety_profile": "reckless"}, "safety_profile"), ({"run_scope": "all"}, "run_scope"),
    # a JSON number is wanted, not text or a flag that converts to one
    ({"token_cap": "100"}, "token_cap"), ({"max_phases": True}, "max_phases"),
    ({"max_duration_minutes": "5"}, "max_duration_minutes"),
])
def test_bad_run_fields_are_422(server: LiveServer, tmp_path: Path, patch: dict,
                                field: str) -> None:
    body = run_body("run-1")
    body["run"].update(patch)  # type: ignore[union-attr]
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    assert detail["detail"][0]["loc"] == ["body", "run", field]


def test_text_fields_have_length_limits(server: LiveServer, tmp_path: Path) -> None:
    body = run_body("run-1")
    body["tiers"][0]["name"] = "n" * 201  # type: ignore[index]
    body["phases"][0]["description"] = "d" * 20_001  # type: ignore[index]
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    assert {tuple(e["loc"][-3:]) for e in detail["detail"]} == {
        ("tiers", 0, "name"), ("phases", 0, "description")}


def test_more_phases_than_max_phases_is_422(server: LiveServer, tmp_path: Path) -> None:
    body = run_body("run-1", max_phases=2)
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    assert detail["field"] == "phases" and "max_phases=2" in detail["detail"]


def test_a_change_reported_past_the_runs_token_cap_ends_it_budget_exhausted(
    server: LiveServer,
) -> None:
    """SPEC §9: exceeding a run cap fails the run. Changes reported through the API were
    never checked: a run 5x over its cap finished DONE_SUCCESS, promotion-eligible."""
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1", token_cap=1000)).raise_for_status()
        moved = http.post("/runs/run-1/phases/P1/update_status",
                          json={"state": "EXECUTING", "tokens_used": 5000})
        assert moved.status_code == 200, moved.text
        assert (moved.json()["run_state"], moved.json()["state"]) == (
            "DONE_FAILED_BUDGET_EXHAUSTED", "FAILED")
        run = http.get("/runs/run-1").json()
        assert [p["state"] for p in run["phases"]] == ["FAILED", "SKIPPED", "SKIPPED"]
        assert (run["tokens_used"], run["promotion_eligible_to_main"]) == (5000, False)
        # the last phase too: its completion no longer ends the run in success
        http.post("/runs/start", json=run_body("run-2", tiers=1, phases_per_tier=(1,),
                                               token_cap=1000)).raise_for_status()
        for state, tokens in (("EXECUTING", 10), ("GATE", 10), ("CI_RUNNING", 10),
                              ("COMPLETE", 1001)):
            last = http.post("/runs/run-2/phases/P1/update_status",
                             json={"state": state, "tokens_used": tokens})
            assert last.status_code == 200, last.text
        assert last.json()["run_state"] == "DONE_FAILED_BUDGET_EXHAUSTED"
        events = http.get("/runs/run-2/events").json()
        assert events[-1]["to_state"] == "DONE_FAILED_BUDGET_EXHAUSTED"
        http.post("/runs/start", json=run_body("run-3")).raise_for_status()  # 9 allowed
        minors = http.post("/runs/run-3/phases/P1/update_status",
                           json={"state": "EXECUTING", "minor_issues_count": 10})
        assert minors.json()["run_state"] == "DONE_FAILED_BUDGET_EXHAUSTED", minors.text
    # SPEC §3: a failed run gets its incident pack, however it was driven
    failure = json.loads((server.settings.runs_dir / "run-1/incident/failure.json")
                         .read_text())
    assert (failure["failure_reason"], failure["failing_phase"]) == ("BUDGET_EXHAUSTED", "P1")
    assert "5000 exceed the cap 1000" in failure["detail"]


def test_a_single_tier_run_of_several_tiers_is_422(server: LiveServer,
                                                   tmp_path: Path) -> None:
    """SPEC §4: a single_tier run handles one tier (its own strategy said to split it,
    and it was started whole)."""
    body = run_body("run-1", run_scope="single_tier")
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    assert detail["field"] == "tiers" and "run-1-1, run-1-2" in detail["detail"]
    with server.client() as http:
        one = run_body("run-1", tiers=1, phases_per_tier=(2,), run_scope="single_tier")
        assert http.post("/runs/start", json=one).status_code == 201


def test_body_over_the_limit_is_413(server: LiveServer, tmp_path: Path) -> None:
    body = run_body("run-1")
    body["phases"][0]["description"] = "d" * (1024 * 1024)  # type: ignore[index]
    _refused_without_trace(server, tmp_path, "POST", "/runs/start", 413, json=body)

    def chunks():  # no Content-Length: the streamed size is what counts
        for _ in range(40):
            yield b"x" * 65_536

    _refused_without_trace(server, tmp_path, "POST", "/runs/start", 413, content=chunks(),
                           headers={"content-type": "application/json"})


@pytest.mark.parametrize(("content", "message"), [
    (b'{"run": {"run_id": "r\xe9"}}', "not UTF-8 (byte 21)"),
    ('{"run": {"run_id": "r"}}'.encode("utf-16"), "not UTF-8 (byte 0)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'\xef\xbb\xbf{"run": {}}', "BOM"),
    (b'{"run": {"token_cap": ' + b"1" * 5000 + b"}}", "digits"),
], ids=["latin-1", "utf-16", "deep", "bom", "huge-int"])
def test_a_body_that_is_not_json_text_is_422_naming_why(
    server: LiveServer, tmp_path: Path, content: bytes, message: str,
) -> None:
    """Like any other body that is not JSON (FastAPI answered these with a 400 that did
    not say what was wrong)."""
    detail = _refused_text(server, tmp_path, "/runs/start", content)
    [error] = detail["detail"]
    assert error["type"] == "json_invalid" and error["loc"][0] == "body"
    assert message in error["ctx"]["error"] and detail["field"] == "body"


@pytest.mark.parametrize(("url", "field"), [
    ("/runs?limit=0", "limit"), ("/runs?limit=ten", "limit"),
    ("/runs/run-1/wait?timeout=-1", "timeout"), ("/runs/run-1/wait?timeout=soon", "timeout"),
])
def test_a_bad_query_parameter_is_422_naming_it(server: LiveServer, tmp_path: Path,
                                                url: str, field: str) -> None:
    detail = _refused_without_trace(server, tmp_path, "GET", url, 422)
    assert detail["field"] == field and detail["detail"][0]["loc"] == ["query", field]


def test_a_lone_surrogate_in_a_text_field_is_422_naming_it(server: LiveServer,
                                                           tmp_path: Path) -> None:
    """`\\ud800` is legal JSON but no text: the 422 echoing it could not be encoded and
    the answer was a 500."""
    content = json.dumps(run_body("run-1")).replace('"Tier 1 work"', '"a\\ud800"')
    detail = _refused_text(server, tmp_path, "/runs/start", content.encode())
    [error] = detail["detail"]
    assert error["loc"] == ["body", "tiers", 0, "name"] and error["input"] == "a\\ud800"
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    reason = b'{"state": "EXECUTING", "reason": "x\\udfff"}'
    detail = _refused_text(server, tmp_path, "/runs/run-1/phases/P1/update_status", reason)
    assert detail["detail"][0]["loc"] == ["body", "reason"]


def test_a_nul_in_free_text_is_422_naming_the_field_on_every_database(
    server: LiveServer, tmp_path: Path,
) -> None:
    """PostgreSQL's text cannot hold a NUL (a 500 there) where SQLite kept it: refused
    alike where it comes in."""
    body = run_body("run-1")
    body["phases"][0]["description"] = "a\x00b"  # type: ignore[index]
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422, json=body)
    [error] = detail["detail"]
    assert error["loc"] == ["body", "phases", 0, "description"] and "NUL" in error["msg"]
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    for url, payload, loc in [
        ("/runs/run-1/phases/P1/update_status", {"state": "EXECUTING", "reason": "\x00"},
         ["body", "reason"]),
        ("/runs/run-1/phases/P1/record_issue",
         {"issue_key": "k", "severity": "minor", "source": "test", "category": "test_failure",
          "description": "x\x00"}, ["body", "description"]),
    ]:
        detail = _refused_without_trace(server, tmp_path, "POST", url, 422, json=payload)
        assert detail["detail"][0]["loc"] == loc


def test_counters_past_32_bits_are_stored_or_refused_never_a_500(server: LiveServer,
                                                                   tmp_path: Path) -> None:
    """Tokens are 64-bit (a jump of 2**31 in one report was bound as a 32-bit integer
    and PostgreSQL failed it); attempts are 32-bit and say so."""
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        moved = http.post("/runs/run-1/phases/P1/update_status",
                          json={"state": "EXECUTING", "tokens_used": 2**31 + 5})
        assert moved.status_code == 200, moved.text
        run = http.get("/runs/run-1").json()
    assert run["tokens_used"] == 2**31 + 5 == run["tiers"][0]["tokens_used"]
    detail = _refused_without_trace(server, tmp_path, "POST",
                                    "/runs/run-1/phases/P1/update_status", 422,
                                    json={"state": "EXECUTING", "builder_attempts": 2**31})
    assert detail["detail"][0]["loc"] == ["body", "builder_attempts"]


def test_flags_must_be_json_booleans(server: LiveServer, tmp_path: Path) -> None:
    """"yes" was read as true and "no" as false."""
    detail = _refused_without_trace(server, tmp_path, "POST", "/runs/start", 422,
                                    json={**run_body("run-1"), "execute": "yes"})
    assert detail["detail"][0]["loc"] == ["body", "execute"]
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    detail = _refused_without_trace(
        server, tmp_path, "POST", "/runs/run-1/phases/P1/record_issue", 422,
        json={"issue_key": "k", "severity": "minor", "source": "test",
              "category": "test_failure", "expected_fail": "no"})
    assert detail["detail"][0]["loc"] == ["body", "expected_fail"]


def test_unknown_run_or_phase_is_404(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    _refused_without_trace(server, tmp_path, "GET", "/runs/nope", 404)
    _refused_without_trace(server, tmp_path, "POST", "/runs/nope/phases/P1/update_status", 404,
                           json={"state": "EXECUTING"})
    _refused_without_trace(server, tmp_path, "POST", "/runs/run-1/phases/P9/update_status", 404,
                           json={"state": "EXECUTING"})


@pytest.mark.parametrize("body", [
    {"state": "DANCING"}, {"state": "EXECUTING", "tokens_used": -1},
    {"state": "EXECUTING", "builder_attempts": -3}, {"state": "EXECUTING", "extra": 1},
    {"state": "EXECUTING", "minor_issues_count": "lots"}, {},
    {"state": "EXECUTING", "tokens_used": "100"}, {"state": "EXECUTING", "tokens_used": True},
    {"state": "EXECUTING", "builder_attempts": 2.0},
], ids=["unknown-state", "neg-tokens", "neg-attempts", "extra-key", "not-int", "no-state",
        "int-as-text", "int-as-flag", "int-as-float"])
def test_bad_update_is_422(server: LiveServer, tmp_path: Path, body: dict) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    _refused_without_trace(server, tmp_path, "POST", "/runs/run-1/phases/P1/update_status", 422,
                           json=body)


def test_bad_path_ids_are_422_naming_the_field(server: LiveServer, tmp_path: Path) -> None:
    detail = _refused_without_trace(server, tmp_path, "GET", "/runs/a%20b", 422)
    assert detail["detail"][0]["loc"] == ["path", "run_id"]
    detail = _refused_without_trace(server, tmp_path, "POST",
                                    "/runs/run-1/phases/..%5Cx/update_status", 422,
                                    json={"state": "EXECUTING"})
    assert detail["detail"][0]["loc"] == ["path", "phase_id"]


@pytest.mark.parametrize(("walk", "move", "allowed"), [
    (WALK, "QUEUED", []),
    (["EXECUTING", "FAILED"], "COMPLETE", []),
    (["EXECUTING"], "COMPLETE", ["FAILED", "GATE"]),
], ids=["complete-to-queued", "failed-to-complete", "executing-to-complete"])
def test_illegal_transition_is_409_listing_allowed_moves(
    server: LiveServer, tmp_path: Path, walk: list[str], move: str, allowed: list[str]
) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        for state in walk:
            http.post("/runs/run-1/phases/P1/update_status", json={"state": state})
    detail = _refused_without_trace(server, tmp_path, "POST",
                                    "/runs/run-1/phases/P1/update_status", 409,
                                    json={"state": move})
    assert detail["allowed"] == allowed


def test_any_change_in_a_terminal_run_is_409(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1", tiers=1, phases_per_tier=(1,)))
        for state in WALK:
            http.post("/runs/run-1/phases/P1/update_status", json={"state": state})
        assert http.get("/runs/run-1").json()["state"] == "DONE_SUCCESS"
    for body in ({"state": "COMPLETE", "tokens_used": 5}, {"state": "EXECUTING"}):
        detail = _refused_without_trace(server, tmp_path, "POST",
                                        "/runs/run-1/phases/P1/update_status", 409, json=body)
        assert detail["current"] == "DONE_SUCCESS" and detail["allowed"] == []


def test_files_are_regenerable_from_the_database(server: LiveServer) -> None:
    from autopack.supervisor.service import Supervisor

    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        for state in WALK:
            http.post("/runs/run-1/phases/P1/update_status", json={"state": state})
    layout = RunLayout(server.settings.runs_dir, "run-1")
    written = views(layout.root)
    for path in layout.root.rglob("*.md"):
        path.unlink()
    supervisor = Supervisor(server.settings)
    try:
        supervisor.regenerate("run-1")
    finally:
        supervisor.close()
    assert views(layout.root) == written


def test_etag_follows_every_change_and_304_only_while_unchanged(server: LiveServer) -> None:
    with server.client() as http:
        created = http.post("/runs/start", json=run_body("run-1"))
        etag = created.headers["etag"]
        first = http.get("/runs/run-1")
        assert first.headers["etag"] == etag
        assert http.get("/runs/run-1", headers={"If-None-Match": etag}).status_code == 304
        http.post("/runs/run-1/phases/P1/update_status",
                  json={"state": "EXECUTING", "tokens_used": 5}).raise_for_status()
        after = http.get("/runs/run-1", headers={"If-None-Match": etag})
        assert after.status_code == 200 and after.headers["etag"] != etag
        assert after.json()["phases"][0]["state"] == "EXECUTING"
        assert after.json()["tokens_used"] == 5
        # A counters-only report changes the run too.
        http.post("/runs/run-1/phases/P1/update_status",
                  json={"state": "EXECUTING", "tokens_used": 9}).raise_for_status()
        latest = http.get("/runs/run-1", headers={"If-None-Match": after.headers["etag"]})
        assert latest.status_code == 200 and latest.json()["tokens_used"] == 9


def test_if_none_match_is_read_as_rfc_9110_says(server: LiveServer) -> None:
    """Weak tags, `*` and lists matched nothing (200 each time), a long list was a 422."""
    with server.client() as http:
        etag = http.post("/runs/start", json=run_body("run-1")).headers["etag"]
        for value in (f"W/{etag}", "*", f'"999", {etag}', f'"998",W/{etag}',
                      ", ".join([f'"{n}"' for n in range(1000, 1060)] + [etag])):
            answer = http.get("/runs/run-1", headers={"If-None-Match": value})
            assert answer.status_code == 304, (value, answer.text)
            assert answer.headers["etag"] == etag
        for value in ('"999"', 'W/"999", "1000"', etag.strip('"')):
            assert http.get("/runs/run-1", headers={"If-None-Match": value}).status_code == 200


def test_an_encoded_slash_in_the_path_is_422_and_reaches_no_endpoint(
    server: LiveServer, tmp_path: Path,
) -> None:
    """The server decoded `%2F` before routing: `/runs/run-1%2Fphases%2FP1/update_status`
    moved phase P1 of run-1, `/runs/run-1%2Fevents` answered run-1's events."""
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    for method, url, body in [
        ("POST", "/runs/run-1%2Fphases%2FP1/update_status", {"state": "EXECUTING"}),
        ("POST", "/runs/run-1%2fphases%2fP1/update_status", {"state": "EXECUTING"}),
        ("GET", "/runs/run-1%2Fevents", None),
        ("GET", "/runs/..%2Fx", None),
    ]:
        refused = _refused_without_trace(server, tmp_path, method, url, 422, json=body)
        assert refused["field"] == "path" and "%2F" in refused["detail"]
    with server.client() as http:
        assert http.get("/runs/run-1").json()["phases"][0]["state"] == "QUEUED"


def test_a_member_named_twice_in_a_body_is_422(server: LiveServer, tmp_path: Path) -> None:
    """`{"state": "SKIPPED", "state": "EXECUTING"}` moved the phase to EXECUTING (the last
    one counted; a proxy checking the first would have passed SKIPPED)."""
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    twice = b'{"state": "SKIPPED", "state": "EXECUTING"}'
    refused = _refused_text(server, tmp_path, "/runs/run-1/phases/P1/update_status", twice)
    assert refused["field"] == "body" and "'state' is given twice" in str(refused["detail"])
    nested = json.dumps(run_body("run-2")).replace('"run_id": "run-2"',
                                                   '"run_id": "run-2", "run_id": "run-3"')
    _refused_text(server, tmp_path, "/runs/start", nested.encode())


def test_head_is_answered_as_get_without_a_body(server: LiveServer) -> None:
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
        for url in ("/health", "/runs", "/runs/run-1"):
            head, get = http.head(url), http.get(url)
            assert head.status_code == 200 and head.content == b"", url
            assert head.headers["content-type"] == get.headers["content-type"], url
        assert http.head("/runs/nope").status_code == 404


def test_openapi_describes_every_endpoint(server: LiveServer) -> None:
    with server.client() as http:
        spec = http.get("/openapi.json").json()
        docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert set(spec["paths"]) >= {
        "/runs/start", "/runs/{run_id}", "/runs/{run_id}/phases/{phase_id}/update_status",
        "/runs/{run_id}/phases/{phase_id}/record_issue", "/runs/{run_id}/issues/index",
        "/project/issues/backlog", "/health", "/runs", "/runs/{run_id}/events",
        "/runs/{run_id}/integration_status", "/runs/{run_id}/strategy", "/strategy/dry_run"}
    run_id = spec["components"]["schemas"]["RunFields"]["properties"]["run_id"]
    assert run_id["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
    # every error answer is documented with its body (a 422 raised by Autopack, a 404 of
    # the event log and 413s were answered but not described)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert "422" in answers and ("413" in answers) == (method == "post"), path
            assert "404" in answers or "{run_id}" not in path, path
            for code, answer in answers.items():
                if code.startswith("4"):
                    schema = answer["content"]["application/json"]["schema"]
                    assert "ErrorOut" in json.dumps(schema), (path, code)
    events = spec["paths"]["/runs/{run_id}/events"]["get"]["responses"]
    assert "404" in events


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000",
                                  "127.0.0.1.attacker.example"])
def test_a_request_naming_another_host_is_refused_and_writes_nothing(
    server: LiveServer, tmp_path: Path, host: str
) -> None:
    """A web page can make a browser send requests to 127.0.0.1 under its own name (DNS
    rebinding); the API answers only the loopback names (AUTOPACK_ALLOWED_HOSTS)."""
    before = (row_counts(server.settings.database_url), tree(tmp_path))
    with server.client() as http:
        refused = http.post("/runs/start", json=run_body("run-1"), headers={"Host": host})
        assert refused.status_code == 400
        assert http.get("/health", headers={"Host": host}).status_code == 400
        assert http.get("/health", headers={"Host": "localhost:1234"}).status_code == 200
    assert (row_counts(server.settings.database_url), tree(tmp_path)) == before


@pytest.mark.parametrize(("url", "body", "field"), [
    ("/runs/run-1/phases/P1/update_status", '{"state": "EXECUTING", "tokens_used": NaN}',
     "tokens_used"),
    ("/runs/run-1/phases/P1/update_status", '{"state": "EXECUTING", "tokens_used": Infinity}',
     "tokens_used"),
    ("/runs/run-1/phases/P1/record_issue",
     '{"issue_key": "k", "severity": NaN, "source": "ci", "category": "c"}', "severity"),
    ("/runs/start", '{"run": {"run_id": "run-2", "max_duration_minutes": NaN}, '
     '"tiers": [{"tier_id": "T1", "tier_index": 0, "name": "A"}], "phases": '
     '[{"phase_id": "P1", "phase_index": 0, "tier_id": "T1", "name": "A"}]}',
     "max_duration_minutes"),
])
def test_nan_and_infinity_are_422_naming_the_field(server: LiveServer, tmp_path: Path,
                                                    url: str, body: str, field: str) -> None:
    """JSON has no NaN or Infinity, but Python's parser reads them: they were a 500."""
    with server.client() as http:
        http.post("/runs/start", json=run_body("run-1")).raise_for_status()
    detail = _refused_without_trace(server, tmp_path, "POST", url, 422, content=body,
                                    headers={"content-type": "application/json"})
    assert field in str(detail["detail"][0]["loc"]), detail
