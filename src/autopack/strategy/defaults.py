"""Built-in defaults: what applies where a ruleset says nothing (SPEC §6, §8, §10).

Budget numbers here only ever *tighten* the configured phase budgets (a high-risk phase
gets at most 2 builder attempts, or fewer if the configuration says fewer), so a budget
set in configuration stays the ceiling for every phase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autopack.domain.categories import BuilderMode, Complexity, TaskCategory
from autopack.strategy.ruleset import AuditorProfile, CiProfile


@dataclass(frozen=True)
class HighRisk:
    """A high-risk category's row of SPEC §6."""

    issue_category: str
    handling: str


HIGH_RISK: dict[TaskCategory, HighRisk] = {
    TaskCategory.CROSS_CUTTING_REFACTOR: HighRisk(
        "cross_cutting_refactor", "strict CI, few builder attempts, Auditor on failure"),
    TaskCategory.INDEX_REGISTRY_MAINTENANCE: HighRisk(
        "index_registry_change", "strict CI, low tolerance for minors"),
    TaskCategory.SCHEMA_CHANGE: HighRisk(
        "schema_contract_change", "Auditor + strict CI, no auto-apply"),
    TaskCategory.BULK_OPERATION: HighRisk(
        "bulk_multi_file_operation", "limit attempts, more chunking"),
    TaskCategory.SECURITY_AUTH: HighRisk(
        "security_auth_change", "always strict CI, security_review Auditor"),
}

HIGH_RISK_CAPS = {"max_builder_attempts": 2, "max_auditor_attempts": 1,
                  "incident_token_cap": 200_000, "ci_max_attempts": 2}
"""Tight caps of a high-risk phase (each the minimum with the configured budget)."""

DEFAULT_CI_MAX_ATTEMPTS = 3

MODE_CAPS: dict[BuilderMode, dict[str, int]] = {
    BuilderMode.TWEAK_LIGHT: {"max_builder_attempts": 2, "max_auditor_attempts": 1,
                              "incident_token_cap": 100_000, "ci_max_attempts": 2},
    BuilderMode.SCAFFOLDING_HEAVY: {},
    BuilderMode.REFACTOR_HEAVY: {"max_builder_attempts": 2, "max_auditor_attempts": 1},
    BuilderMode.SCHEMA_HEAVY: {"max_builder_attempts": 2, "max_auditor_attempts": 1},
}
"""SPEC §8: a builder mode's attempt and token caps (applied at adoption stage 2)."""

AUDITOR_PROFILES: dict[TaskCategory, AuditorProfile] = {
    TaskCategory.SCHEMA_CHANGE: AuditorProfile.SCHEMA_REVIEW,
    TaskCategory.INDEX_REGISTRY_MAINTENANCE: AuditorProfile.SCHEMA_REVIEW,
    TaskCategory.SECURITY_AUTH: AuditorProfile.SECURITY_REVIEW,
    TaskCategory.ORCHESTRATOR: AuditorProfile.ORCHESTRATOR_REVIEW,
    TaskCategory.CROSS_CUTTING_REFACTOR: AuditorProfile.ORCHESTRATOR_REVIEW,
    TaskCategory.BULK_OPERATION: AuditorProfile.ORCHESTRATOR_REVIEW,
    TaskCategory.DEBT_CLEANUP: AuditorProfile.DEBT_CLEANUP_REVIEW,
}
"""SPEC §8: the Auditor profile of a high-risk or high-complexity phase, by category."""


def builder_mode_for(category: TaskCategory, complexity: Complexity) -> BuilderMode:
    """SPEC §8: the builder mode a phase gets when the plan names none."""
    if category is TaskCategory.SCHEMA_CHANGE:
        return BuilderMode.SCHEMA_HEAVY
    if category in HIGH_RISK:
        return BuilderMode.REFACTOR_HEAVY
    if complexity is Complexity.LOW or category is TaskCategory.DOCS:
        return BuilderMode.TWEAK_LIGHT
    return BuilderMode.SCAFFOLDING_HEAVY


def ci_profile_for(high_risk: bool, complexity: Complexity, safety_critical: bool
                   ) -> tuple[CiProfile, str]:
    """SPEC §10: strict for high-risk work, high complexity or a safety-critical project."""
    if high_risk:
        return CiProfile.STRICT, "high-risk category (SPEC §6)"
    if complexity is Complexity.HIGH:
        return CiProfile.STRICT, "complexity high (SPEC §10)"
    if safety_critical:
        return CiProfile.STRICT, "safety_critical project (SPEC §10)"
    return CiProfile.NORMAL, "default (SPEC §10)"


@dataclass(frozen=True)
class Classifier:
    """A built-in classification rule: words in the title/description, or scope paths."""

    category: TaskCategory
    words: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


# Highest risk first: the first rule that matches decides.
CLASSIFIERS = (
    Classifier(TaskCategory.SECURITY_AUTH,
               ("auth", "authentication", "authorization", "login", "logout", "password",
                "oauth", "jwt", "session", "sessions", "permission", "permissions", "security",
                "csrf", "credential", "credentials", "2fa", "sso"),
               ("auth/", "security/", "login")),
    Classifier(TaskCategory.SCHEMA_CHANGE,
               ("schema", "migration", "migrations", "alembic", "database model",
                "db model", "table", "column", "contract"),
               ("migrations/", "schema", "alembic/", "models.py")),
    Classifier(TaskCategory.CROSS_CUTTING_REFACTOR,
               ("rename across", "across the codebase", "cross-cutting", "cross cutting",
                "refactor", "restructure", "move module", "rename")),
    Classifier(TaskCategory.BULK_OPERATION,
               ("bulk", "every file", "all files", "codemod", "mass update", "each module")),
    Classifier(TaskCategory.INDEX_REGISTRY_MAINTENANCE,
               ("registry", "index", "mapping", "lookup table", "routing table"),
               ("registry", "index.")),
    Classifier(TaskCategory.ORCHESTRATOR,
               ("orchestrator", "orchestration", "pipeline", "scheduler", "workflow engine")),
    Classifier(TaskCategory.DOCS,
               ("docs", "documentation", "readme", "docstring", "changelog", "tutorial"),
               ("docs/", "README", ".md")),
    Classifier(TaskCategory.TESTS, ("test", "tests", "coverage", "fixture"), ("tests/",)),
    Classifier(TaskCategory.FEATURE_SCAFFOLDING,
               ("add", "create", "scaffold", "implement", "new", "endpoint", "feature")),
)

BULK_SCOPE_ENTRIES = 10
"""A phase whose scope names this many paths or more is a bulk operation."""


def words_in(text: str) -> set[str]:
    """Lower-case words and two- and three-word phrases of a text."""
    tokens = re.findall(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", text.lower())
    found = set(tokens)
    for size in (2, 3):
        found |= {" ".join(tokens[i:i + size]) for i in range(len(tokens) - size + 1)}
    return found
