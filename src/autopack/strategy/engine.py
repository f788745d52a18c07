"""The StrategyEngine: (ruleset, backlog, plan, safety profile, run scope) -> strategy.

Pure and deterministic: the same inputs give byte-identical JSON. Each value carries the
reason that produced it (a built-in default, the plan, or a ruleset rule, by JSON path).
Layers, later ones winning: configured budgets -> builder mode (stage 2) -> high-risk
defaults (stage >= 1) -> ruleset `categories` -> ruleset `overrides` -> `auto_apply`.
A high-risk phase is never made weaker than its defaults except by a ruleset rule.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autopack.domain.budgets import BudgetDefaults, run_caps
from autopack.domain.categories import (
    MODE_LIMITS,
    BuilderMode,
    Complexity,
    SafetyProfile,
    TaskCategory,
)
from autopack.domain.paths import path_problem
from autopack.issues.rules import AgingPolicy, Severity
from autopack.jsontext import document_text
from autopack.plan.spec import MAX_INDEX, PhaseSpec, RunSpec, TierSpec
from autopack.strategy import defaults as d
from autopack.strategy.ruleset import CiProfile, PhaseSettings, Ruleset
from autopack.strategy.split import RunPart, split_plan

STRATEGY_FORMAT = 1
_RANK = {Complexity.LOW: 0, Complexity.MEDIUM: 1, Complexity.HIGH: 2}
DEBT_TIER_ID, DEBT_PHASE_ID = "debt-cleanup", "debt-cleanup"


@dataclass(frozen=True)
class BacklogItem:
    """One project backlog entry as the engine sees it."""

    issue_key: str
    category: str
    base_severity: str
    status: str
    age_in_runs: int
    age_in_tiers: int
    evidence_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class StrategyInput:
    """Everything a strategy is compiled from."""

    spec: RunSpec
    ruleset: Ruleset
    ruleset_source: str = "builtin"
    backlog: tuple[BacklogItem, ...] = ()
    budgets: BudgetDefaults = field(default_factory=BudgetDefaults)
    """The configured budgets; a ruleset's own `budgets` section replaces them."""
    aging: AgingPolicy = field(default_factory=AgingPolicy)


@dataclass
class _Values:
    """Field values with the reason each was last set for."""

    values: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: Any, why: str) -> None:
        self.values[name] = value
        self.reasons[name] = why

    def cap(self, name: str, limit: int, why: str) -> None:
        if limit < self.values[name]:
            self.set(name, limit, why)

    def reason_list(self) -> list[dict[str, Any]]:
        return [{"field": k, "value": _plain(self.values[k]), "source": self.reasons[k]}
                for k in self.values]


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def effective_aging(rules: Ruleset, configured: AgingPolicy) -> AgingPolicy:
    """The ruleset's aging thresholds when it sets them, else the configured ones."""
    return rules.aging if "aging" in rules.model_fields_set else configured


def compile_strategy(given: StrategyInput) -> dict[str, Any]:
    """The strategy document for a plan (see the module docstring for the layering)."""
    spec, rules = given.spec, given.ruleset
    budgets = rules.budgets if "budgets" in rules.model_fields_set else given.budgets
    aging = effective_aging(rules, given.aging)
    stage = rules.adoption_stage
    run_fields = spec.run.model_fields_set
    safety = (spec.run.safety_profile if "safety_profile" in run_fields or
              rules.safety_profile is None else rules.safety_profile)
    scope = (spec.run.run_scope if "run_scope" in run_fields or
             rules.default_run_scope is None else rules.default_run_scope)
    critical = safety is SafetyProfile.SAFETY_CRITICAL

    tiers = sorted(spec.tiers, key=lambda t: t.tier_index)
    phases = sorted(spec.phases, key=lambda p: p.phase_index)
    backlog = _backlog(given.backlog, aging, stage)
    debt_note = None
    caps = run_caps(budgets, len(phases), spec.run.token_cap, spec.run.max_phases,
                    spec.run.max_duration_minutes)
    if stage >= 2 and backlog["aged"]:
        # No room only when the plan fills max_phases exactly (one more would split it).
        room = len(phases) != caps.max_phases
        debt, debt_note = _debt_phase(phases, tiers, backlog["aged"], room)
        if debt is not None:
            tiers = [*tiers, debt[0]]
            phases = [*phases, debt[1]]
            caps = run_caps(budgets, len(phases), spec.run.token_cap, spec.run.max_phases,
                            spec.run.max_duration_minutes)
    compiled = [_phase(p, rules, budgets, stage, critical) for p in phases]
    if stage >= 2 and backlog["aged"]:
        _debt_auto_apply(compiled, backlog["aged"])
    tier_docs = [_tier(t, [c for c in compiled if c["tier_id"] == t.tier_id], budgets, critical,
                       stage) for t in tiers]
    parts = split_plan(spec.run.run_id, [(t.tier_id, [p.phase_id for p in phases
                                                      if p.tier_id == t.tier_id]) for t in tiers],
                       caps.max_phases, scope)
    return {
        "format": STRATEGY_FORMAT,
        "version": rules.version,
        "ruleset": {"source": given.ruleset_source, "version": rules.version,
                    "sha256": _digest(rules.model_dump(mode="json"))},
        "run_id": spec.run.run_id,
        "project_id": spec.run.project_id,
        "safety_profile": safety.value,
        "run_scope": scope.value,
        "adoption_stage": stage,
        "run": {
            "token_cap": caps.token_cap, "max_phases": caps.max_phases,
            "max_duration_minutes": caps.max_duration_minutes,
            "max_minor_issues_total": caps.max_minor_issues_total,
            "tier_caps_enforced": stage >= 1,
            "promotion_blocking": "full" if stage >= 2 else "run_state_only",
        },
        "issues": {
            "all_minor": stage == 0,
            "severity_upgrades": {} if stage == 0 else _severity_upgrades(rules),
            "effective_major_keys": [b.issue_key for b in backlog["aged"]],
            "aging": aging.model_dump(mode="json"),
        },
        "backlog": {"open": backlog["open"], "aged": len(backlog["aged"]),
                    "debt_cleanup": debt_note},
        "tiers": tier_docs,
        "phases": compiled,
        "split": [_part(p) for p in parts],
    }


def to_json(strategy: dict[str, Any]) -> str:
    """The strategy file's text: sorted keys, two-space indent, trailing newline."""
    return document_text(strategy)


def _digest(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _severity_upgrades(rules: Ruleset) -> dict[str, str]:
    """Issue category -> severity: high-risk categories major (SPEC §6), then the ruleset's
    categories' `issue_category`/`severity`, then its `severity_upgrades`."""
    upgrades: dict[str, Severity] = {r.issue_category: Severity.MAJOR
                                     for r in d.HIGH_RISK.values()}
    for policy in rules.categories.values():
        if policy.issue_category and policy.severity:
            upgrades[policy.issue_category] = policy.severity
    upgrades.update(rules.severity_upgrades)
    return {k: v.value for k, v in sorted(upgrades.items())}


def _part(part: RunPart) -> dict[str, Any]:
    return {"run_id": part.run_id, "tier_ids": list(part.tier_ids),
            "phase_ids": list(part.phase_ids)}


def _phase(p: PhaseSpec, rules: Ruleset, budgets: BudgetDefaults, stage: int, critical: bool
           ) -> dict[str, Any]:
    v = _Values()
    category, why_category, hinted = _category(p, rules, stage)
    v.set("task_category", category, why_category)
    policy = rules.categories.get(category) if stage >= 1 else None
    high_risk = stage >= 1 and (policy.high_risk if policy and policy.high_risk is not None
                                else category in d.HIGH_RISK)
    v.set("high_risk", high_risk,
          "ruleset $.categories" if policy and policy.high_risk is not None
          else "built-in high-risk table (SPEC §6)" if high_risk else "not a high-risk category")
    _complexity(v, p, hinted, high_risk, stage)
    complexity: Complexity = v.values["complexity"]
    if p.builder_mode is not None:
        v.set("builder_mode", p.builder_mode, "plan")
    else:
        v.set("builder_mode", d.builder_mode_for(category, complexity),
              "built-in mode for category and complexity (SPEC §8)")
    phase_budget = budgets.phase
    v.set("max_builder_attempts", phase_budget.max_builder_attempts, "configured budget")
    v.set("max_auditor_attempts", phase_budget.max_auditor_attempts, "configured budget")
    v.set("incident_token_cap", phase_budget.incident_token_cap, "configured budget")
    v.set("ci_max_attempts", d.DEFAULT_CI_MAX_ATTEMPTS, "default (SPEC §10)")
    profile, why_ci = d.ci_profile_for(high_risk, complexity if stage >= 1 else Complexity.LOW,
                                       critical)
    v.set("ci_profile", profile, why_ci)
    if p.ci_profile == "strict":  # a plan may ask for more CI, never for less
        v.set("ci_profile", CiProfile.STRICT, "plan")
    v.set("auditor_profile", None, "none needed")
    v.set("auto_apply", not high_risk,
          "no auto-apply for high-risk work (SPEC §6)" if high_risk else "default")
    if stage >= 2:
        mode: BuilderMode = v.values["builder_mode"]
        for name, limit in d.MODE_CAPS[mode].items():
            v.cap(name, limit, f"builder mode {mode.value} (SPEC §8)")
        if high_risk or complexity is Complexity.HIGH:
            mapped = rules.auditor_profiles.get(category)
            if mapped is not None:
                v.set("auditor_profile", mapped, f"ruleset $.auditor_profiles.{category.value}")
            elif category in d.AUDITOR_PROFILES:
                v.set("auditor_profile", d.AUDITOR_PROFILES[category],
                      "built-in auditor profile (SPEC §8)")
    if high_risk:
        for name, limit in d.HIGH_RISK_CAPS.items():
            v.cap(name, limit, "high-risk default (SPEC §6)")
    if stage >= 1:
        if policy is not None:
            _apply(v, policy, f"ruleset $.categories.{category.value}")
        for i, rule in enumerate(rules.overrides):
            if _matches(rule.task_category, rule.complexity, category, v.values["complexity"]):
                _apply(v, rule.set, f"ruleset $.overrides[{i}]")
        for i, allow in enumerate(rules.auto_apply):
            if _matches(allow.task_category, allow.complexity, category, v.values["complexity"]):
                v.set("auto_apply", allow.allow, f"ruleset $.auto_apply[{i}]")
    limits = MODE_LIMITS[v.values["builder_mode"]] if stage >= 2 else None
    issue_category = (policy.issue_category if policy and policy.issue_category
                      else d.HIGH_RISK[category].issue_category if high_risk
                      and category in d.HIGH_RISK else None)
    return {
        "issue_category": issue_category,
        "phase_id": p.phase_id, "phase_index": p.phase_index, "tier_id": p.tier_id,
        "name": p.name, "description": p.description,
        "allowed_scope": list(p.scope) if p.scope is not None else None,
        # below stage 2 a builder mode is a label: the gate's general limits apply
        "max_files": limits.max_files if limits else None,
        "max_changed_lines": limits.max_changed_lines if limits else None,
        **{k: _plain(val) for k, val in v.values.items()},
        "reasons": v.reason_list(),
    }


def _matches(want_category: TaskCategory | None, want_complexity: Complexity | None,
             category: TaskCategory, complexity: Complexity) -> bool:
    return ((want_category is None or want_category is category)
            and (want_complexity is None or want_complexity is complexity))


def _apply(v: _Values, settings: PhaseSettings, source: str) -> None:
    for name in PhaseSettings.model_fields:
        value = getattr(settings, name)
        if value is not None:
            v.set(name, value, f"{source}.{name}")


def _category(p: PhaseSpec, rules: Ruleset, stage: int
              ) -> tuple[TaskCategory, str, Complexity | None]:
    """The phase's category, why, and a complexity hint from the rule that chose it."""
    if p.task_category is not None:
        return p.task_category, "plan", None
    if stage == 0:
        return TaskCategory.GENERAL, "adoption stage 0: no classification", None
    title = d.words_in(p.name)
    description = d.words_in(p.description)
    scope = list(p.scope or ())
    for i, rule in enumerate(rules.classification):
        hit = _first_word(rule.keywords, title, description) or _first_path(rule.paths, scope)
        if hit:
            return rule.task_category, f"ruleset $.classification[{i}]: {hit}", rule.complexity
    if len(scope) >= d.BULK_SCOPE_ENTRIES:
        return TaskCategory.BULK_OPERATION, f"classified: {len(scope)} scope paths", None
    for builtin, words, by_words, by_paths in _BUILTIN_PASSES:
        hit = None
        if by_words and not (words.isdisjoint(title) and words.isdisjoint(description)):
            hit = _first_word(builtin.words, title, description)
        if hit is None and by_paths:
            hit = _first_path(builtin.paths, scope)
        if hit:
            return builtin.category, f"classified: {hit}", None
    return TaskCategory.GENERAL, "classified: no rule matched", None


def _builtin_passes() -> tuple[tuple[d.Classifier, frozenset[str], bool, bool], ...]:
    """High-risk signals first (words or paths), then words, then paths of the rest; each
    classifier with its lower-case words as a set, to skip it in one step."""
    risky = [c for c in d.CLASSIFIERS if c.category in d.HIGH_RISK]
    others = [c for c in d.CLASSIFIERS if c.category not in d.HIGH_RISK]
    passes = ([(c, True, True) for c in risky] + [(c, True, False) for c in others]
              + [(c, False, True) for c in others])
    return tuple((c, frozenset(w.lower() for w in c.words), by_words, by_paths)
                 for c, by_words, by_paths in passes)


_BUILTIN_PASSES = _builtin_passes()


def _first_word(words: Sequence[str], title: set[str], description: set[str]) -> str | None:
    for word in words:
        if word.lower() in title:
            return f"{word.lower()!r} in the title"
    for word in words:
        if word.lower() in description:
            return f"{word.lower()!r} in the description"
    return None


def _first_path(fragments: Sequence[str], scope: Sequence[str]) -> str | None:
    for fragment in fragments:
        for entry in scope:
            if fragment in entry:
                return f"scope path {entry!r} matches {fragment!r}"
    return None


def _complexity(v: _Values, p: PhaseSpec, hinted: Complexity | None, high_risk: bool,
                stage: int) -> None:
    if p.complexity is not None:
        if high_risk and _RANK[p.complexity] < _RANK[Complexity.HIGH]:
            v.set("complexity", Complexity.HIGH,
                  f"high-risk category: the plan's {p.complexity.value} raised to high (SPEC §6)")
        else:
            v.set("complexity", p.complexity, "plan")
    elif hinted is not None:
        v.set("complexity", hinted, "ruleset classification rule")
    elif high_risk:
        v.set("complexity", Complexity.HIGH, "high-risk default (SPEC §6)")
    elif stage >= 1 and v.values["task_category"] is TaskCategory.DOCS:
        v.set("complexity", Complexity.LOW, "docs default")
    elif stage >= 1 and len(p.scope or ()) > 5:
        v.set("complexity", Complexity.HIGH, f"{len(p.scope or ())} scope paths")
    else:
        v.set("complexity", Complexity.MEDIUM, "default")


def _tier(t: TierSpec, phases: list[dict[str, Any]], budgets: BudgetDefaults, critical: bool,
          stage: int) -> dict[str, Any]:
    tb = budgets.tier
    per_phase_minor = (tb.minor_issues_per_phase_safety_critical if critical
                       else tb.minor_issues_per_phase_normal)
    tight = [p for p in phases if p["high_risk"]] if stage >= 1 else []
    minor = per_phase_minor * (len(phases) - len(tight)) + min(per_phase_minor, 1) * len(tight)
    strict = any(p["ci_profile"] == CiProfile.STRICT.value for p in phases)
    reasons = [
        {"field": "token_cap", "value": tb.token_cap_multiplier *
         sum(p["incident_token_cap"] for p in phases),
         "source": f"{tb.token_cap_multiplier} x sum of phase incident_token_cap (SPEC §9)"},
        {"field": "ci_run_cap", "value": tb.ci_runs_per_phase * len(phases),
         "source": f"{tb.ci_runs_per_phase} x phases (SPEC §9)"},
        {"field": "max_minor_issues_tolerated", "value": minor,
         "source": (f"{per_phase_minor} per phase"
                    f"{' (safety_critical)' if critical else ''}"
                    f"{', 1 per high-risk phase' if tight else ''} (SPEC §9)")},
        {"field": "max_major_issues_tolerated",
         "value": tb.max_major_issues_safety_critical if critical else None,
         "source": "safety-critical tier (SPEC §9)" if critical else "no cap (normal profile)"},
        {"field": "ci_profile", "value": "strict" if strict else "normal",
         "source": "a phase runs strict CI" if strict else "every phase runs normal CI"},
    ]
    doc: dict[str, Any] = {"tier_id": t.tier_id, "tier_index": t.tier_index, "name": t.name,
                           "description": t.description}
    doc.update({r["field"]: r["value"] for r in reasons})
    doc["reasons"] = reasons
    return doc


def _backlog(items: Sequence[BacklogItem], aging: AgingPolicy, stage: int) -> dict[str, Any]:
    open_items = [b for b in items if b.status != "resolved"]
    aged = []
    if stage >= 2:
        aged = sorted((b for b in open_items if b.status == "needs_cleanup"
                       or b.age_in_runs >= aging.minor_issue_aging_runs_threshold
                       or b.age_in_tiers >= aging.minor_issue_aging_tiers_threshold),
                      key=lambda b: b.issue_key)
    return {"open": len(open_items), "aged": aged}


def evidence_paths(items: Sequence[BacklogItem]) -> list[str]:
    """Repository paths named by the issues' evidence (`tests/x.py::test_y`, `src/a.py:12`)."""
    paths = set()
    for item in items:
        for ref in item.evidence_refs:
            candidate = ref.split("::", 1)[0].split(":", 1)[0].strip()
            if ((candidate and "/" in candidate) or "." in candidate) and not path_problem(
                    candidate) and not candidate.startswith((".autonomous_runs/", ".autopack/")):
                paths.add(candidate)
    return sorted(paths)


def _debt_phase(phases: list[PhaseSpec], tiers: list[TierSpec], aged: list[BacklogItem],
                room: bool) -> tuple[tuple[TierSpec, PhaseSpec] | None, str]:
    scope = evidence_paths(aged)
    if not scope:
        return None, "not inserted: the aged issues' evidence names no repository path"
    if not room:
        return None, "not inserted: the plan has exactly max_phases phases"
    tier_index = max(t.tier_index for t in tiers) + 1
    phase_index = max(p.phase_index for p in phases) + 1
    if max(tier_index, phase_index) > MAX_INDEX:
        return None, f"not inserted: the plan's tier or phase indexes reach {MAX_INDEX}"
    keys = ", ".join(b.issue_key for b in aged)
    tier = TierSpec(tier_id=DEBT_TIER_ID, tier_index=tier_index,
                    name="Debt cleanup", description="Issues aged past the thresholds")
    phase = PhaseSpec(
        phase_id=DEBT_PHASE_ID, phase_index=phase_index,
        tier_id=DEBT_TIER_ID, name="Clean up aged issues",
        description=f"Resolve the aged backlog issues: {keys}"[:20_000],
        task_category=TaskCategory.DEBT_CLEANUP, complexity=Complexity.MEDIUM,
        builder_mode=BuilderMode.TWEAK_LIGHT, scope=scope,
    )
    return (tier, phase), f"inserted as phase {DEBT_PHASE_ID!r} for {len(aged)} aged issues"


def _debt_auto_apply(compiled: list[dict[str, Any]], aged: list[BacklogItem]) -> None:
    risky = {risk.issue_category for risk in d.HIGH_RISK.values()}
    for phase in compiled:
        if phase["phase_id"] != DEBT_PHASE_ID or phase["task_category"] != "debt_cleanup":
            continue
        touched = sorted({b.category for b in aged} & risky)
        phase["auto_apply"] = not touched
        source = (f"debt cleanup of high-risk categories: {', '.join(touched)}" if touched
                  else "debt cleanup of low-risk issues")
        phase["reasons"] = [r for r in phase["reasons"] if r["field"] != "auto_apply"] + [
            {"field": "auto_apply", "value": not touched, "source": source}]
