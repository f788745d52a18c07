"""Strategies of real runs: compiled and frozen at creation (DB and file), shaping the
run's phases and tiers; the dry run over the API and the CLI; bad rulesets and plans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from autopack.supervisor.service import Supervisor
from tests.conftest import LiveServer, run_body
from tests.integration.helpers import row_counts

AUTOPACK = str(Path(sys.executable).with_name("autopack"))
RULESET = {"version": 2, "categories": {"docs": {"max_builder_attempts": 1}}}


def _auth_body(run_id: str = "run-1") -> dict[str, object]:
    body = run_body(run_id)
    body["phases"][0].update(name="Add the login endpoint")  # type: ignore[index]
    body["phases"][1].update(task_category="docs")  # type: ignore[index]
    return body


def test_a_run_is_created_with_its_strategy_frozen(server: LiveServer, tmp_path: Path) -> None:
    ruleset = tmp_path / "project_ruleset_v2.json"
    ruleset.write_text(json.dumps(RULESET))
    server.settings.ruleset = ruleset
    with server.client() as http:
        run = http.post("/runs/start", json=_auth_body()).json()
    login, docs, _ = run["phases"]
    assert (login["task_category"], login["complexity"], login["builder_mode"]) == (
        "security_auth", "high", "refactor_heavy")
    assert (login["max_builder_attempts"], login["incident_token_cap"]) == (2, 200_000)
    assert docs["max_builder_attempts"] == 1
    assert run["tiers"][0]["token_cap"] == 3 * (200_000 + 100_000)
    folder = server.settings.runs_dir / "run-1"
    written = (folder / "project_implementation_strategy_v2.json").read_text()
    sup = Supervisor(server.settings)
    try:
        assert json.loads(written) == sup.strategy("run-1")
        assert json.loads(written)["ruleset"]["source"] == str(ruleset)
        # Frozen: a changed ruleset or a regenerate leaves the run's strategy as it was.
        ruleset.write_text(json.dumps({"version": 2, "adoption_stage": 0}))
        sup.regenerate("run-1")
        assert (folder / "project_implementation_strategy_v2.json").read_text() == written
    finally:
        sup.close()
    with server.client() as http:
        events = http.get("/runs/run-1/events").json()
        assert http.get("/runs/run-1/strategy").json() == json.loads(written)
        assert http.get("/runs/nope/strategy").status_code == 404
    assert any(e["to_state"] == "RUN_CREATED" and e["reason"] == "strategy compiled and frozen"
               for e in events)


def test_a_bad_configured_ruleset_refuses_the_run_and_writes_nothing(
    server: LiveServer, tmp_path: Path
) -> None:
    ruleset = tmp_path / "project_ruleset_v1.json"
    ruleset.write_text('{"categories": {"docs": {"incident_token_cap": -1}}}')
    server.settings.ruleset = ruleset
    before = row_counts(server.settings.database_url)
    with server.client() as http:
        refused = http.post("/runs/start", json=run_body())
    assert refused.status_code == 422
    assert refused.json()["field"] == f"{ruleset}: $.categories.docs.incident_token_cap"
    assert row_counts(server.settings.database_url) == before
    assert not (server.settings.runs_dir / "run-1").exists()


def test_dry_run_over_the_api_writes_nothing(server: LiveServer) -> None:
    before = row_counts(server.settings.database_url)
    with server.client() as http:
        compiled = http.post("/strategy/dry_run", json={"plan": _auth_body(),
                                                        "ruleset": RULESET})
        assert compiled.status_code == 200
        assert compiled.json()["phases"][1]["max_builder_attempts"] == 1
        assert compiled.json()["ruleset"]["source"] == "request"
        bad_plan = http.post("/strategy/dry_run", json={"plan": {"run": {"run_id": "x"}}})
        assert bad_plan.status_code == 422 and "tiers" in bad_plan.text
        bad_rules = http.post("/strategy/dry_run", json={
            "plan": _auth_body(), "ruleset": {"auto_apply": [{"allow": "maybe"}]}})
        assert bad_rules.status_code == 422
        assert bad_rules.json()["field"] == "ruleset: $.auto_apply[0].allow"
        endless = http.post(  # was accepted, and answered as null
            "/strategy/dry_run", content=json.dumps({"plan": _auth_body(), "ruleset": {
                "budgets": {"run": {"max_duration_minutes": float("inf")}}}}),
            headers={"content-type": "application/json"})
        assert endless.status_code == 422, endless.text
        assert endless.json()["field"] == "ruleset: $.budgets.run.max_duration_minutes"
        assert http.get("/runs/run-1").status_code == 404
    assert row_counts(server.settings.database_url) == before


def test_dry_run_sees_the_projects_aged_backlog(server: LiveServer) -> None:
    with server.client() as http:
        for n in range(1, 5):  # a minor issue seen in four runs ages into effective major
            body = run_body(f"run-{n}", project_id="shop")
            http.post("/runs/start", json=body).raise_for_status()
            http.post(f"/runs/run-{n}/phases/P1/record_issue", json={
                "issue_key": "lint_unused", "severity": "minor", "source": "static_check",
                "category": "lint", "evidence_refs": ["src/shop/cart.py:12"]}).raise_for_status()
        plan = run_body("next", project_id="shop")
        compiled = http.post("/strategy/dry_run", json={"plan": plan}).json()
    assert compiled["issues"]["effective_major_keys"] == ["lint_unused"]
    debt = compiled["phases"][-1]
    assert (debt["phase_id"], debt["allowed_scope"]) == ("debt-cleanup", ["src/shop/cart.py"])


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AUTOPACK, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env}, timeout=120, check=False)


def test_cli_dry_run_json_table_and_errors(tmp_path: Path) -> None:
    env = {"AUTOPACK_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'autopack.db'}",
           "AUTOPACK_RUNS_DIR": str(tmp_path / "runs"), "COLUMNS": "200"}
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(_auth_body()))
    ruleset = tmp_path / "rules.json"
    ruleset.write_text(json.dumps(RULESET))
    as_json = _cli("strategy", "dry-run", "--plan", str(plan), "--ruleset", str(ruleset),
                   "--json", cwd=tmp_path, env=env)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["phases"][0]["auditor_profile"] == "security_review"
    again = _cli("strategy", "dry-run", "--plan", str(plan), "--ruleset", str(ruleset),
                 "--json", cwd=tmp_path, env=env)
    assert again.stdout == as_json.stdout  # byte-identical
    table = _cli("strategy", "dry-run", "--plan", str(plan), cwd=tmp_path, env=env)
    assert table.returncode == 0 and "security_auth" in table.stdout
    assert not (tmp_path / "db").exists() and not (tmp_path / "runs").exists()
    plan.write_text('{"run": {"run_id": "x"},\n "tiers": [}')
    broken = _cli("strategy", "dry-run", "--plan", str(plan), cwd=tmp_path, env=env)
    assert broken.returncode == 2 and f"{plan}:2:" in broken.stderr
    missing = _cli("strategy", "dry-run", cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "--plan" in missing.stderr
    schema = _cli("strategy", "schema", cwd=tmp_path, env=env)
    assert json.loads(schema.stdout)["title"].startswith("Autopack project ruleset")


def test_cli_dry_run_of_a_markdown_plan(tmp_path: Path) -> None:
    env = {"AUTOPACK_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'autopack.db'}"}
    plan = tmp_path / "comprehensive_plan.md"
    plan.write_text("# Plan: Shop auth\n## Tier AUTH: Authentication\n"
                    "### Phase login: Add the login endpoint\n- scope: src/auth/\n"
                    "Check the password hash.\n")
    done = _cli("strategy", "dry-run", "--plan", str(plan), "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["run_id"] == "shop-auth"
    assert (doc["phases"][0]["task_category"], doc["phases"][0]["allowed_scope"]) == (
        "security_auth", ["src/auth/"])
    plan.write_text("# Plan: Docs\n## Tier D: Docs\n### Phase readme: Readme\n"
                    "- category: docs\n- ci_profile: strict\n")  # was parsed, then dropped
    asked = json.loads(_cli("strategy", "dry-run", "--plan", str(plan), "--json",
                            cwd=tmp_path, env=env).stdout)["phases"][0]
    assert asked["ci_profile"] == "strict"
    assert {"field": "ci_profile", "source": "plan"} in [
        {k: r[k] for k in ("field", "source")} for r in asked["reasons"]]
    default = _cli("strategy", "dry-run", "--json", cwd=tmp_path, env=env)  # the folder's own
    named = _cli("strategy", "dry-run", "--plan", str(plan), "--json", cwd=tmp_path, env=env)
    assert default.returncode == 0 and default.stdout == named.stdout, default.stderr
    plan.write_text("# Plan: Shop\n## Tier AUTH: Auth\n### Phase login: Login\n- colour: red\n")
    bad = _cli("strategy", "dry-run", "--plan", str(plan), cwd=tmp_path, env=env)
    assert bad.returncode == 2 and f"{plan}:4: unknown metadata key 'colour'" in bad.stderr


def test_cli_dry_run_refuses_ids_git_cannot_name_as_run_does(tmp_path: Path) -> None:
    """A dry run of a plan `autopack run` refuses was answered with a strategy: a phase
    id or run id no branch or tag can hold is named where the plan (or flag) gives it."""
    env = {"AUTOPACK_DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'autopack.db'}"}
    plan = tmp_path / "comprehensive_plan.md"
    plan.write_text("# Plan: Shop\n## Tier AUTH: Auth\n### Phase login: Login\n"
                    "### Phase login.lock: Lock out\n")
    bad = _cli("strategy", "dry-run", "--plan", str(plan), "--json", cwd=tmp_path, env=env)
    assert bad.returncode == 2, bad.stdout
    assert json.loads(bad.stdout)["where"] == f"{plan}:4"
    assert "'login.lock' cannot name a git branch or tag" in bad.stderr
    plan.write_text("# Plan: Shop\n## Tier AUTH: Auth\n### Phase login: Login\n")
    flag = _cli("strategy", "dry-run", "--plan", str(plan), "--run-id", "shop..2", "--json",
                cwd=tmp_path, env=env)
    assert flag.returncode == 2 and json.loads(flag.stdout)["where"] == "--run-id"
    spec = tmp_path / "plan.json"
    spec.write_text(json.dumps(run_body("shop.")))
    named = _cli("strategy", "dry-run", "--plan", str(spec), "--json", cwd=tmp_path, env=env)
    assert named.returncode == 2 and json.loads(named.stdout)["where"] == f"{spec}: $.run.run_id"
    assert _cli("strategy", "dry-run", "--plan", str(plan), "--json", cwd=tmp_path,
                env=env).returncode == 0
    assert not (tmp_path / "db").exists()


def test_dry_run_over_the_api_refuses_what_start_would_for_a_repository(
    server: LiveServer, tmp_path: Path,
) -> None:
    with server.client() as http:
        body = run_body("run.lock")
        assert http.post("/strategy/dry_run", json={"plan": body}).status_code == 200
        body["repo"] = {"path": str(tmp_path)}
        refused = http.post("/strategy/dry_run", json={"plan": body})
    assert refused.status_code == 422 and refused.json()["field"] == "plan.run.run_id"


def test_a_ruleset_at_every_limit_gives_runs_the_database_stores(server: LiveServer,
                                                                  tmp_path: Path) -> None:
    """A ruleset the parser accepted (token caps of 1e30, attempts of 2^31) made every
    run start a 500 on PostgreSQL's 32- and 64-bit columns: the limits now fit them."""
    limits = {"budgets": {"run": {"token_cap": 10**12, "max_duration_minutes": 525_600},
                          "tier": {"token_cap_multiplier": 1000, "ci_runs_per_phase": 1000},
                          "phase": {"max_builder_attempts": 1000,
                                    "incident_token_cap": 10**9}},
              "overrides": [{"set": {"ci_max_attempts": 1000, "max_builder_attempts": 1000,
                                     "incident_token_cap": 10**9}}]}
    ruleset = tmp_path / "project_ruleset_v1.json"
    ruleset.write_text(json.dumps(limits))
    server.settings.ruleset = ruleset
    body = run_body("big", tiers=1, phases_per_tier=(25,))
    with server.client() as http:
        started = http.post("/runs/start", json=body)
        assert started.status_code == 201, started.text
        run = http.get("/runs/big").json()
    assert run["token_cap"] == 10**12
    assert run["tiers"][0]["token_cap"] == 1000 * 25 * 10**9


def test_issues_are_graded_as_the_runs_strategy_says(server: LiveServer,
                                                     tmp_path: Path) -> None:
    """`severity_upgrades` (the ruleset's, and major for high-risk issue categories, SPEC
    §6) were written into the strategy and never applied; at adoption stage 0 every issue
    is minor (SPEC §11)."""
    ruleset = tmp_path / "project_ruleset_v1.json"
    ruleset.write_text(json.dumps({"severity_upgrades": {"flaky_test": "major"}}))
    server.settings.ruleset = ruleset

    def record(run_id: str, key: str, category: str, severity: str) -> dict[str, object]:
        answer = http.post(f"/runs/{run_id}/phases/P1/record_issue", json={
            "issue_key": key, "severity": severity, "source": "ci", "category": category})
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    with server.client() as http:
        http.post("/runs/start", json=run_body("graded")).raise_for_status()
        assert record("graded", "flaky_x", "flaky_test", "minor")["effective_severity"] == \
            "major"
        assert record("graded", "contract_x", "schema_contract_change",
                      "minor")["effective_severity"] == "major"
        assert record("graded", "lint_x", "lint", "minor")["effective_severity"] == "minor"
        assert http.get("/runs/graded").json()["major_issues_count"] == 2
        ruleset.write_text(json.dumps({"adoption_stage": 0}))
        http.post("/runs/start", json=run_body("stage0")).raise_for_status()
        assert record("stage0", "crash_x", "ci_command_failure",
                      "major")["effective_severity"] == "minor"
        assert http.get("/runs/stage0").json()["major_issues_count"] == 0


def test_below_adoption_stage_2_promotion_blocks_on_the_run_state_only(
    server: LiveServer, tmp_path: Path,
) -> None:
    """SPEC §11: full promotion blocking comes with stage 2; the strategy said
    `run_state_only` for stages 0 and 1 while a not_clean tier still blocked."""
    ruleset = tmp_path / "project_ruleset_v1.json"
    eligible = {}
    for stage in (1, 2):
        ruleset.write_text(json.dumps({"adoption_stage": stage}))
        server.settings.ruleset = ruleset
        run_id = f"stage{stage}"
        with server.client() as http:
            http.post("/runs/start", json=run_body(run_id, tiers=1, phases_per_tier=(1,))
                      ).raise_for_status()
            for key in ("a", "b", "c"):  # 3 minor issues: 2 tolerated by the tier
                http.post(f"/runs/{run_id}/phases/P1/record_issue", json={
                    "issue_key": key, "severity": "minor", "source": "ci",
                    "category": "lint"}).raise_for_status()
            for state in ("EXECUTING", "GATE", "CI_RUNNING", "COMPLETE"):
                http.post(f"/runs/{run_id}/phases/P1/update_status",
                          json={"state": state}).raise_for_status()
            run = http.get(f"/runs/{run_id}").json()
        assert (run["state"], run["adoption_stage"]) == ("DONE_SUCCESS", stage)
        assert run["tiers"][0]["cleanliness"] == "not_clean"
        eligible[stage] = run["promotion_eligible_to_main"]
    assert eligible == {1: True, 2: False}
