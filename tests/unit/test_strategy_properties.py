"""Properties of the StrategyEngine: deterministic output, and high-risk work never
weaker than its defaults unless a ruleset rule touches it."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autopack.plan.spec import RunSpec
from autopack.strategy.engine import StrategyInput, compile_strategy, to_json
from autopack.strategy.ruleset import Ruleset

CATEGORIES = ["schema_change", "cross_cutting_refactor", "feature_scaffolding",
              "security_auth", "orchestrator", "docs", "index_registry_maintenance",
              "bulk_operation", "debt_cleanup", "tests", "general"]
HIGH_RISK = ["cross_cutting_refactor", "index_registry_maintenance", "schema_change",
             "bulk_operation", "security_auth"]
WORDS = ["add", "login", "schema", "docs", "rename", "across", "the", "registry", "api",
         "model", "tests", "pipeline", "cache", "page", "token", "bulk", "fix"]

phase_fields = st.fixed_dictionaries({}, optional={
    "task_category": st.sampled_from(CATEGORIES),
    "complexity": st.sampled_from(["low", "medium", "high"]),
    "builder_mode": st.sampled_from(["tweak_light", "scaffolding_heavy", "refactor_heavy",
                                     "schema_heavy"]),
    "scope": st.lists(st.sampled_from(["src/", "tests/", "migrations/", "docs/", "a.py"]),
                      max_size=12),
})
names = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
settings_values = st.fixed_dictionaries({}, optional={
    "ci_profile": st.sampled_from(["normal", "strict"]),
    "max_builder_attempts": st.integers(1, 9),
    "incident_token_cap": st.integers(1_000, 900_000),
    "auto_apply": st.booleans(),
    "complexity": st.sampled_from(["low", "medium", "high"]),
})


@st.composite
def plans(draw: st.DrawFn) -> dict[str, Any]:
    tiers = draw(st.integers(1, 3))
    count = draw(st.integers(1, 8))
    phases = []
    for i in range(count):
        fields = draw(phase_fields)
        phases.append({"phase_id": f"P{i}", "phase_index": i, "tier_id": f"T{i % tiers}",
                       "name": draw(names), "description": draw(names), **fields})
    run: dict[str, Any] = {"run_id": "prop"}
    if draw(st.booleans()):
        run["safety_profile"] = draw(st.sampled_from(["normal", "safety_critical"]))
    if draw(st.booleans()):
        run["max_phases"] = draw(st.integers(1, 10))
    return {"run": run, "tiers": [{"tier_id": f"T{t}", "tier_index": t, "name": f"Tier {t}"}
                                  for t in range(tiers)], "phases": phases}


@st.composite
def rulesets(draw: st.DrawFn, avoid: str | None = None) -> dict[str, Any]:
    allowed = [c for c in CATEGORIES if c != avoid]
    rules: dict[str, Any] = {"adoption_stage": draw(st.sampled_from([0, 1, 2]))}
    if draw(st.booleans()):
        rules["categories"] = draw(st.dictionaries(st.sampled_from(allowed), settings_values,
                                                   max_size=3))
    if draw(st.booleans()):
        rules["overrides"] = [{"task_category": c, "set": s} for c, s in draw(
            st.lists(st.tuples(st.sampled_from(allowed), settings_values), max_size=3))]
    if draw(st.booleans()):
        rules["severity_upgrades"] = draw(st.dictionaries(
            st.sampled_from(["lint", "flaky_test", "perf"]), st.sampled_from(["minor", "major"]),
            max_size=3))
    return rules


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same document with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@settings(max_examples=150, deadline=None)
@given(plans(), rulesets(), st.integers(0, 10**6))
def test_compiling_is_deterministic(plan: dict[str, Any], rules: dict[str, Any],
                                    seed: int) -> None:
    rng = random.Random(seed)
    first = to_json(compile_strategy(StrategyInput(
        RunSpec.model_validate(plan), Ruleset.model_validate(rules))))
    again = to_json(compile_strategy(StrategyInput(
        RunSpec.model_validate(_shuffled(plan, rng)),
        Ruleset.model_validate(_shuffled(rules, rng)))))
    assert first == again
    assert json.loads(first)["phases"]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_high_risk_work_is_never_weaker_than_its_defaults_unless_a_rule_says_so(
    data: st.DataObject,
) -> None:
    category = data.draw(st.sampled_from(HIGH_RISK))
    plan = data.draw(plans())
    plan["phases"][0]["task_category"] = category
    rules = data.draw(rulesets(avoid=category))
    rules["adoption_stage"] = data.draw(st.sampled_from([1, 2]))
    rules.pop("overrides", None)  # an override without a category would touch it too
    doc = compile_strategy(StrategyInput(RunSpec.model_validate(plan),
                                         Ruleset.model_validate(rules)))
    phase = doc["phases"][0]
    assert phase["high_risk"] is True
    assert phase["complexity"] == "high"
    assert phase["ci_profile"] == "strict"
    assert phase["auto_apply"] is False
    assert phase["max_builder_attempts"] <= 2
    assert phase["max_auditor_attempts"] <= 1
    assert phase["ci_max_attempts"] <= 2
    assert phase["incident_token_cap"] <= 200_000
