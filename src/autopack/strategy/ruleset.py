"""`project_ruleset_vN.json`: a project's declarative policy, validated.

Every section is optional; what a ruleset leaves out comes from the built-in defaults
(`defaults.py`). Unknown keys, wrong types, non-positive budgets and unknown category or
profile names are errors that name the file and the JSON path (`$.categories.docs...`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autopack.domain.budgets import MAX_COUNT, MAX_PHASE_TOKENS, BudgetDefaults
from autopack.domain.categories import (
    BuilderMode,
    Complexity,
    RunScope,
    SafetyProfile,
    TaskCategory,
)
from autopack.domain.errors import ConfigError
from autopack.domain.text import NoNul
from autopack.issues.rules import AgingPolicy, Severity
from autopack.plan import jsonfile

Attempts = Annotated[int, Field(gt=0, le=MAX_COUNT)]
PhaseTokens = Annotated[int, Field(gt=0, le=MAX_PHASE_TOKENS)]


class CiProfile(StrEnum):
    """Which CI profile a phase or tier runs (SPEC §10)."""

    NORMAL = "normal"
    STRICT = "strict"


class AuditorProfile(StrEnum):
    """The Auditor's review focus (SPEC §8)."""

    SCHEMA_REVIEW = "schema_review"
    SECURITY_REVIEW = "security_review"
    ORCHESTRATOR_REVIEW = "orchestrator_review"
    DEBT_CLEANUP_REVIEW = "debt_cleanup_review"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PhaseSettings(_Strict):
    """Values a rule may set for the phases it matches; unset fields are left alone."""

    complexity: Complexity | None = None
    builder_mode: BuilderMode | None = None
    ci_profile: CiProfile | None = None
    ci_max_attempts: Attempts | None = None
    max_builder_attempts: Attempts | None = None
    max_auditor_attempts: Annotated[int, Field(ge=0, le=100)] | None = None
    incident_token_cap: PhaseTokens | None = None
    auditor_profile: AuditorProfile | None = None
    auto_apply: bool | None = None


class CategoryPolicy(PhaseSettings):
    """A task category's policy: its phase settings and how its issues are graded."""

    high_risk: bool | None = None
    """Treat as high-risk (SPEC §6): the engine's strict defaults apply."""
    issue_category: str | None = Field(None, min_length=1, max_length=64)
    severity: Severity | None = None


class Override(_Strict):
    """Phase settings for phases matching a task category and/or a complexity."""

    task_category: TaskCategory | None = None
    complexity: Complexity | None = None
    set: PhaseSettings


class AutoApplyRule(_Strict):
    """Whether matching phases may be committed without an Auditor's approval."""

    task_category: TaskCategory | None = None
    complexity: Complexity | None = None
    allow: bool


class ClassificationRule(_Strict):
    """Phases without a category whose title, description or scope match get one."""

    keywords: list[Annotated[str, Field(min_length=1, max_length=100), NoNul]] = Field(
        default_factory=list, max_length=200)
    paths: list[Annotated[str, Field(min_length=1, max_length=500), NoNul]] = Field(
        default_factory=list, max_length=200)
    task_category: TaskCategory
    complexity: Complexity | None = None


class Ruleset(_Strict):
    """A project's ruleset (`project_ruleset_vN.json`)."""

    version: Annotated[int, Field(ge=1, le=10_000)] = 1
    safety_profile: SafetyProfile | None = None
    """When set, runs of this project use it unless the run names its own."""
    default_run_scope: RunScope | None = None
    adoption_stage: Literal[0, 1, 2] = 2
    categories: dict[TaskCategory, CategoryPolicy] = Field(default_factory=dict)
    classification: list[ClassificationRule] = Field(default_factory=list, max_length=500)
    severity_upgrades: dict[Annotated[str, Field(min_length=1, max_length=64)], Severity] = (
        Field(default_factory=dict))
    """Issue category -> the severity its issues are raised to."""
    overrides: list[Override] = Field(default_factory=list, max_length=500)
    auditor_profiles: dict[TaskCategory, AuditorProfile] = Field(default_factory=dict)
    auto_apply: list[AutoApplyRule] = Field(default_factory=list, max_length=500)
    budgets: BudgetDefaults = BudgetDefaults()
    aging: AgingPolicy = AgingPolicy()


BUILTIN = Ruleset()
"""The ruleset of a project that has none: every value from the built-in defaults."""


def parse_ruleset(data: Any, source: str) -> Ruleset:
    """Validate a ruleset document; errors name `source` and the JSON path."""
    return jsonfile.validate(Ruleset, data, source, ConfigError, strict=True)


def load_ruleset(path: Path) -> Ruleset:
    """Read and validate `project_ruleset_vN.json`."""
    return jsonfile.load(Ruleset, path, "ruleset", ConfigError, strict=True)


def ruleset_schema() -> dict[str, Any]:
    """The published JSON Schema of a ruleset (`docs/ruleset.schema.json`)."""
    schema = Ruleset.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Autopack project ruleset (project_ruleset_vN.json)"
    return schema
