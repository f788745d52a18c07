"""The StrategyEngine: every built-in default, every kind of override, the adoption
stages, classification, backlog influence, run splitting, and bad rulesets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autopack.domain.budgets import BudgetDefaults, PhaseBudgetDefaults
from autopack.domain.errors import ConfigError, PlanError
from autopack.plan.spec import RunSpec, load_run_spec
from autopack.strategy.engine import BacklogItem, StrategyInput, compile_strategy, to_json
from autopack.strategy.ruleset import BUILTIN, Ruleset, load_ruleset, ruleset_schema

ROOT = Path(__file__).resolve().parents[2]
HIGH_RISK = ["cross_cutting_refactor", "index_registry_maintenance", "schema_change",
             "bulk_operation", "security_auth"]


def plan(*phases: dict[str, Any], tiers: int = 1, **run: Any) -> RunSpec:
    listed = []
    for i, phase in enumerate(phases):
        listed.append({"phase_id": f"P{i + 1}", "phase_index": i,
                       "tier_id": f"T{min(i, tiers - 1) + 1}", "name": f"Phase {i + 1}",
                       **phase})
    return RunSpec.model_validate({
        "run": {"run_id": "r1", **run},
        "tiers": [{"tier_id": f"T{t + 1}", "tier_index": t, "name": f"Tier {t + 1}"}
                  for t in range(tiers)],
        "phases": listed,
    })


def compile_(spec: RunSpec, ruleset: dict[str, Any] | Ruleset | None = None,
             backlog: tuple[BacklogItem, ...] = (), **kw: Any) -> dict[str, Any]:
    rules = ruleset if isinstance(ruleset, Ruleset) else (
        Ruleset.model_validate(ruleset) if ruleset is not None else BUILTIN)
    return compile_strategy(StrategyInput(spec, rules, "test", backlog, **kw))


def phase(doc: dict[str, Any], n: int = 0) -> dict[str, Any]:
    return doc["phases"][n]  # type: ignore[no-any-return]


def reason(p: dict[str, Any], field: str) -> str:
    return next(r["source"] for r in p["reasons"] if r["field"] == field)  # type: ignore[no-any-return]


def test_the_published_schema_is_current() -> None:
    published = (ROOT / "docs" / "ruleset.schema.json").read_text()
    assert published == json.dumps(ruleset_schema(), indent=2, sort_keys=True) + "\n", (
        "regenerate it: autopack strategy schema > docs/ruleset.schema.json")


@pytest.mark.parametrize(("category", "issue_category", "auditor"), [
    ("cross_cutting_refactor", "cross_cutting_refactor", "orchestrator_review"),
    ("index_registry_maintenance", "index_registry_change", "schema_review"),
    ("schema_change", "schema_contract_change", "schema_review"),
    ("bulk_operation", "bulk_multi_file_operation", "orchestrator_review"),
    ("security_auth", "security_auth_change", "security_review"),
])
def test_high_risk_defaults(category: str, issue_category: str, auditor: str) -> None:
    p = phase(compile_(plan({"task_category": category, "complexity": "low"})))
    assert (p["high_risk"], p["complexity"], p["ci_profile"], p["auto_apply"]) == (
        True, "high", "strict", False)
    assert (p["max_builder_attempts"], p["max_auditor_attempts"], p["ci_max_attempts"]) == (
        2, 1, 2)
    assert p["incident_token_cap"] <= 200_000
    assert (p["issue_category"], p["auditor_profile"]) == (issue_category, auditor)
    assert "raised to high" in reason(p, "complexity")
    assert reason(p, "auto_apply") == "no auto-apply for high-risk work (SPEC §6)"


def test_ordinary_work_gets_the_configured_budgets_and_normal_ci() -> None:
    p = phase(compile_(plan({"task_category": "feature_scaffolding"})))
    assert (p["complexity"], p["builder_mode"], p["ci_profile"], p["auto_apply"]) == (
        "medium", "scaffolding_heavy", "normal", True)
    assert (p["max_builder_attempts"], p["max_auditor_attempts"], p["incident_token_cap"]) == (
        3, 2, 300_000)
    assert p["auditor_profile"] is None and p["issue_category"] is None
    assert reason(p, "max_builder_attempts") == "configured budget"


@pytest.mark.parametrize(("fields", "mode", "caps"), [
    ({"task_category": "docs"}, "tweak_light", (2, 1, 100_000)),
    ({"task_category": "tests", "complexity": "low"}, "tweak_light", (2, 1, 100_000)),
    ({"task_category": "tests"}, "scaffolding_heavy", (3, 2, 300_000)),
    ({"task_category": "schema_change"}, "schema_heavy", (2, 1, 200_000)),
    ({"task_category": "security_auth"}, "refactor_heavy", (2, 1, 200_000)),
    ({"task_category": "orchestrator", "complexity": "high"}, "scaffolding_heavy",
     (3, 2, 300_000)),
])
def test_builder_modes_and_their_caps(fields: dict[str, str], mode: str,
                                      caps: tuple[int, int, int]) -> None:
    p = phase(compile_(plan(fields)))
    assert p["builder_mode"] == mode
    assert (p["max_builder_attempts"], p["max_auditor_attempts"], p["incident_token_cap"]) == caps
    from autopack.domain.categories import MODE_LIMITS, BuilderMode

    limits = MODE_LIMITS[BuilderMode(mode)]
    assert (p["max_files"], p["max_changed_lines"]) == (limits.max_files,
                                                        limits.max_changed_lines)


def test_configured_budgets_stay_the_ceiling() -> None:
    budgets = BudgetDefaults(phase=PhaseBudgetDefaults(max_builder_attempts=1,
                                                       incident_token_cap=50_000))
    doc = compile_(plan({"task_category": "security_auth"}, {"task_category": "general"}),
                   budgets=budgets)
    assert [(p["max_builder_attempts"], p["incident_token_cap"]) for p in doc["phases"]] == [
        (1, 50_000), (1, 50_000)]


def test_tier_and_run_caps_follow_spec_9() -> None:
    doc = compile_(plan({"task_category": "general"}, {"task_category": "security_auth"},
                        {"task_category": "docs"}, tiers=2))
    t1, t2 = doc["tiers"]
    assert t1["token_cap"] == 3 * 300_000 and t1["ci_run_cap"] == 2
    assert t2["token_cap"] == 3 * (200_000 + 100_000) and t2["ci_run_cap"] == 4
    assert (t1["max_minor_issues_tolerated"], t2["max_minor_issues_tolerated"]) == (2, 1 + 2)
    assert (t1["max_major_issues_tolerated"], t2["max_major_issues_tolerated"]) == (None, None)
    assert (t1["ci_profile"], t2["ci_profile"]) == ("normal", "strict")
    run = doc["run"]
    assert (run["token_cap"], run["max_phases"], run["max_duration_minutes"],
            run["max_minor_issues_total"]) == (5_000_000, 25, 120.0, 9)


def test_safety_critical_tightens_tiers_and_ci() -> None:
    doc = compile_(plan({"task_category": "general"}, {"task_category": "docs"},
                        safety_profile="safety_critical"))
    assert [p["ci_profile"] for p in doc["phases"]] == ["strict", "strict"]
    assert reason(phase(doc), "ci_profile") == "safety_critical project (SPEC §10)"
    tier = doc["tiers"][0]
    assert (tier["max_minor_issues_tolerated"], tier["max_major_issues_tolerated"]) == (2, 0)


def test_complexity_high_runs_strict_ci() -> None:
    p = phase(compile_(plan({"task_category": "feature_scaffolding", "complexity": "high"})))
    assert (p["ci_profile"], reason(p, "ci_profile")) == ("strict", "complexity high (SPEC §10)")


def test_every_kind_of_ruleset_override() -> None:
    rules = {
        "version": 4,
        "categories": {"feature_scaffolding": {"ci_profile": "strict", "max_builder_attempts": 5,
                                               "issue_category": "feature_gap",
                                               "severity": "major"}},
        "overrides": [{"task_category": "feature_scaffolding", "complexity": "medium",
                       "set": {"incident_token_cap": 123_456}},
                      {"complexity": "medium", "set": {"max_auditor_attempts": 0}}],
        "auditor_profiles": {"security_auth": "schema_review"},
        "auto_apply": [{"task_category": "schema_change", "allow": True}],
        "severity_upgrades": {"flaky_test": "major"},
        "aging": {"minor_issue_aging_runs_threshold": 7},
    }
    doc = compile_(plan({"task_category": "feature_scaffolding"},
                        {"task_category": "security_auth"}, {"task_category": "schema_change"}),
                   rules)
    feature, auth, schema = doc["phases"]
    assert (feature["ci_profile"], feature["max_builder_attempts"]) == ("strict", 5)
    assert reason(feature, "ci_profile") == "ruleset $.categories.feature_scaffolding.ci_profile"
    assert feature["incident_token_cap"] == 123_456
    assert reason(feature, "incident_token_cap") == ("ruleset $.overrides[0]."
                                                    "incident_token_cap")
    assert feature["max_auditor_attempts"] == 0
    assert auth["auditor_profile"] == "schema_review"
    assert reason(auth, "auditor_profile") == "ruleset $.auditor_profiles.security_auth"
    assert (schema["auto_apply"], reason(schema, "auto_apply")) == (True,
                                                                  "ruleset $.auto_apply[0]")
    upgrades = doc["issues"]["severity_upgrades"]
    assert upgrades["flaky_test"] == upgrades["feature_gap"] == "major"
    assert upgrades["security_auth_change"] == "major"
    assert doc["issues"]["aging"]["minor_issue_aging_runs_threshold"] == 7
    assert doc["version"] == 4


def test_a_ruleset_may_declare_a_category_high_risk_or_not() -> None:
    doc = compile_(plan({"task_category": "orchestrator"}, {"task_category": "security_auth"}),
                   {"categories": {"orchestrator": {"high_risk": True},
                                   "security_auth": {"high_risk": False}}})
    orchestrator, auth = doc["phases"]
    assert (orchestrator["high_risk"], orchestrator["ci_profile"]) == (True, "strict")
    assert (auth["high_risk"], auth["auto_apply"], auth["ci_profile"]) == (False, True, "normal")


def test_ruleset_budgets_profile_and_scope_apply_unless_the_run_names_its_own() -> None:
    rules = {"safety_profile": "safety_critical", "default_run_scope": "single_tier",
             "budgets": {"run": {"token_cap": 777}}}
    doc = compile_(plan({"task_category": "general"}), rules)
    assert (doc["safety_profile"], doc["run_scope"], doc["run"]["token_cap"]) == (
        "safety_critical", "single_tier", 777)
    doc = compile_(plan({"task_category": "general"}, safety_profile="normal",
                        run_scope="multi_tier", token_cap=999), rules)
    assert (doc["safety_profile"], doc["run_scope"], doc["run"]["token_cap"]) == (
        "normal", "multi_tier", 999)


def test_adoption_stages() -> None:
    spec = plan({"name": "Add login form"}, {"task_category": "schema_change"})
    stage0 = compile_(spec, {"adoption_stage": 0})
    assert [p["task_category"] for p in stage0["phases"]] == ["general", "schema_change"]
    assert [p["high_risk"] for p in stage0["phases"]] == [False, False]
    assert [p["ci_profile"] for p in stage0["phases"]] == ["normal", "normal"]
    assert stage0["issues"]["all_minor"] is True and stage0["issues"]["severity_upgrades"] == {}
    assert stage0["run"]["tier_caps_enforced"] is False
    stage1 = compile_(spec, {"adoption_stage": 1})
    assert [p["task_category"] for p in stage1["phases"]] == ["security_auth", "schema_change"]
    assert [p["auditor_profile"] for p in stage1["phases"]] == [None, None]
    assert stage1["run"]["promotion_blocking"] == "run_state_only"
    # builder modes are labels below stage 2: the gate's general limits apply
    assert [p["max_files"] for p in stage1["phases"]] == [None, None]
    stage2 = compile_(spec)
    assert [p["auditor_profile"] for p in stage2["phases"]] == ["security_review",
                                                               "schema_review"]
    assert stage2["run"]["promotion_blocking"] == "full"
    assert all(isinstance(p["max_files"], int) for p in stage2["phases"])


@pytest.mark.parametrize(("fields", "category", "why"), [
    ({"name": "Add login endpoint"}, "security_auth", "'login' in the title"),
    ({"name": "Passwords", "description": "Hash the password with argon2"},
     "security_auth", "'password' in the description"),
    ({"name": "Change storage", "scope": ["app/migrations/"]}, "schema_change",
     "scope path 'app/migrations/' matches 'migrations/'"),
    ({"name": "Update the schema"}, "schema_change", "'schema' in the title"),
    ({"name": "Rename across the codebase"}, "cross_cutting_refactor",
     "'rename across' in the title"),
    ({"name": "Touch many", "scope": [f"m{i}/" for i in range(12)]}, "bulk_operation",
     "12 scope paths"),
    ({"name": "Update the plugin registry"}, "index_registry_maintenance",
     "'registry' in the title"),
    ({"name": "Write the README"}, "docs", "'readme' in the title"),
    ({"name": "Add a feature"}, "feature_scaffolding", "'add' in the title"),
    ({"name": "Add the model", "scope": ["src/", "tests/"]}, "feature_scaffolding",
     "'add' in the title"),
    ({"name": "Polish", "scope": ["tests/unit/"]}, "tests", "scope path 'tests/unit/'"),
    ({"name": "Phase one"}, "general", "no rule matched"),
])
def test_classification_of_phases_without_metadata(fields: dict[str, Any], category: str,
                                                    why: str) -> None:
    p = phase(compile_(plan(fields)))
    assert p["task_category"] == category
    assert why in reason(p, "task_category")


def test_ruleset_classification_comes_before_the_built_in_rules() -> None:
    rules = {"classification": [{"keywords": ["login"], "task_category": "docs",
                                 "complexity": "low"}]}
    p = phase(compile_(plan({"name": "Document the login page"}), rules))
    assert (p["task_category"], p["complexity"]) == ("docs", "low")
    assert reason(p, "task_category") == "ruleset $.classification[0]: 'login' in the title"


def _aged(key: str, category: str = "lint", evidence: tuple[str, ...] = ("src/app.py:3",)
          ) -> BacklogItem:
    return BacklogItem(key, category, "minor", "needs_cleanup", 4, 1, evidence)


def test_aged_issues_are_effective_major_and_get_a_debt_cleanup_phase() -> None:
    backlog = (_aged("lint_a"), _aged("flaky", evidence=("tests/test_x.py::test_y",
                                                         ".autonomous_runs/r/log.txt")),
               BacklogItem("fresh", "lint", "minor", "open", 1, 0, ("src/other.py",)))
    doc = compile_(plan({"task_category": "general"}), backlog=backlog)
    assert doc["issues"]["effective_major_keys"] == ["flaky", "lint_a"]
    debt = doc["phases"][-1]
    assert (debt["phase_id"], debt["tier_id"], debt["task_category"], debt["complexity"]) == (
        "debt-cleanup", "debt-cleanup", "debt_cleanup", "medium")
    assert debt["allowed_scope"] == ["src/app.py", "tests/test_x.py"]
    assert debt["auto_apply"] is True and debt["auditor_profile"] is None
    assert debt["max_builder_attempts"] == 2 and debt["incident_token_cap"] == 100_000
    assert doc["tiers"][-1]["tier_id"] == "debt-cleanup"
    assert doc["backlog"] == {"open": 3, "aged": 2,
                              "debt_cleanup": "inserted as phase 'debt-cleanup' for 2 aged issues"}


def test_debt_cleanup_of_high_risk_issues_is_never_auto_applied() -> None:
    doc = compile_(plan({"task_category": "general"}),
                   backlog=(_aged("schema_drift", "schema_contract_change"),))
    debt = doc["phases"][-1]
    assert debt["auto_apply"] is False
    assert "schema_contract_change" in reason(debt, "auto_apply")


def test_no_debt_phase_below_stage_2_without_paths_or_without_room() -> None:
    backlog = (_aged("lint_a"),)
    assert len(compile_(plan({}), {"adoption_stage": 1}, backlog)["phases"]) == 1
    nowhere = compile_(plan({}), backlog=(_aged("x", evidence=("a log line",)),))
    assert len(nowhere["phases"]) == 1 and "names no repository path" in nowhere["backlog"][
        "debt_cleanup"]
    full = compile_(plan({}, max_phases=1), backlog=backlog)
    assert len(full["phases"]) == 1 and "max_phases" in full["backlog"]["debt_cleanup"]
    # one index more than the largest would not be a valid plan (it was a 500)
    top = compile_(plan({"phase_index": 9_999}), backlog=backlog)
    assert len(top["phases"]) == 1 and "reach 9999" in top["backlog"]["debt_cleanup"]
    top_tier = plan({})
    top_tier.tiers[0].tier_index = 9_999
    assert len(compile_(top_tier, backlog=backlog)["phases"]) == 1
    split = compile_(plan({}, {}, tiers=2, max_phases=1), backlog=backlog)
    assert split["phases"][-1]["phase_id"] == "debt-cleanup"  # the plan is split anyway
    assert split["split"][-1]["phase_ids"] == ["debt-cleanup"]


def test_run_splitting_by_tier_and_by_scope() -> None:
    spec = plan(*[{} for _ in range(7)], tiers=3, max_phases=3)
    # tiers: T1 = P1, T2 = P2, T3 = P3..P7 (5 phases: cut into 3 + 2)
    parts = [(p["run_id"], p["tier_ids"], p["phase_ids"]) for p in compile_(spec)["split"]]
    assert parts == [("r1-1", ["T1", "T2"], ["P1", "P2"]), ("r1-2", ["T3"], ["P3", "P4", "P5"]),
                     ("r1-3", ["T3"], ["P6", "P7"])]
    single = plan({}, {}, tiers=2, run_scope="single_tier")
    assert [p["tier_ids"] for p in compile_(single)["split"]] == [["T1"], ["T2"]]
    small = compile_(plan({}, {}, tiers=2))
    assert small["split"] == [{"run_id": "r1", "tier_ids": ["T1", "T2"],
                               "phase_ids": ["P1", "P2"]}]


def test_the_same_inputs_give_byte_identical_json() -> None:
    spec = plan({"name": "Add login"}, {"task_category": "docs"}, tiers=2)
    assert to_json(compile_(spec)) == to_json(compile_(spec))


@pytest.mark.parametrize(("text", "where", "message"), [
    ('{"version": 1,\n  "categories": ', ":2:17", "malformed JSON"),
    ('{"nope": 1}', ": $.nope", "Extra inputs are not permitted"),
    ('{"adoption_stage": "two"}', ": $.adoption_stage", "Input should be"),
    ('{"categories": {"docs": {"max_builder_attempts": 0}}}',
     ": $.categories.docs.max_builder_attempts", "greater than 0"),
    ('{"budgets": {"run": {"token_cap": -5}}}', ": $.budgets.run.token_cap", "greater than 0"),
    ('{"overrides": [{"set": {"incident_token_cap": 0}}]}',
     ": $.overrides[0].set.incident_token_cap", "greater than 0"),
    ('{"categories": {"gardening": {}}}', ": $.categories.gardening", "Input should be"),
    ('{"auditor_profiles": {"docs": "vibes_review"}}', ": $.auditor_profiles.docs",
     "Input should be"),
    ('{"categories": {"docs": {"ci_profile": "lenient"}}}', ": $.categories.docs.ci_profile",
     "Input should be"),
    # JSON means what it says: text or another type is not converted (a "yes" turned
    # auto-apply on for schema changes)
    ('{"auto_apply": [{"task_category": "schema_change", "allow": "yes"}]}',
     ": $.auto_apply[0].allow", "valid boolean"),
    ('{"version": "2"}', ": $.version", "valid integer"),
    ('{"categories": {"docs": {"high_risk": "true"}}}', ": $.categories.docs.high_risk",
     "valid boolean"),
    ('{"categories": {"docs": {"incident_token_cap": "5000"}}}',
     ": $.categories.docs.incident_token_cap", "valid integer"),
    # past what the database stores: every run start was a 500
    ('{"budgets": {"run": {"token_cap": 1e30}}}', ": $.budgets.run.token_cap",
     "valid integer"),
    ('{"budgets": {"run": {"token_cap": 1000000000000000000000000000000}}}',
     ": $.budgets.run.token_cap", "less than or equal to 1000000000000"),
    ('{"overrides": [{"set": {"max_builder_attempts": 2147483648}}]}',
     ": $.overrides[0].set.max_builder_attempts", "less than or equal to 1000"),
    ('{"budgets": {"tier": {"token_cap_multiplier": 10000}}}',
     ": $.budgets.tier.token_cap_multiplier", "less than or equal to 1000"),
])
def test_bad_rulesets_name_file_and_json_path(tmp_path: Path, text: str, where: str,
                                              message: str) -> None:
    path = tmp_path / "project_ruleset_v1.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_ruleset(path)
    assert refused.value.where == f"{path}{where}"
    assert message in refused.value.message


def test_a_missing_ruleset_or_plan_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such ruleset file"):
        load_ruleset(tmp_path / "nope.json")
    with pytest.raises(PlanError, match="no such plan file"):
        load_run_spec(tmp_path / "nope.json")
    bad = tmp_path / "plan.json"
    bad.write_text('{"run": {"run_id": "x"}, "tiers": [], "phases": []}')
    with pytest.raises(PlanError) as refused:
        load_run_spec(bad)
    assert refused.value.where == f"{bad}: $.tiers"
