"""The labels a run and its phases carry (SPEC §4, §8)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SafetyProfile(StrEnum):
    """How much risk a project tolerates."""

    NORMAL = "normal"
    """Cost-conscious; tolerates more minor issues."""
    SAFETY_CRITICAL = "safety_critical"
    """Strict budgets and CI; any unclean tier fails the run."""


class RunScope(StrEnum):
    """How many tiers one run processes."""

    MULTI_TIER = "multi_tier"
    """One run processes several tiers; tier summaries do not block progress."""
    SINGLE_TIER = "single_tier"
    """A run handles one tier."""


class TaskCategory(StrEnum):
    """What kind of work a phase is."""

    SCHEMA_CHANGE = "schema_change"
    CROSS_CUTTING_REFACTOR = "cross_cutting_refactor"
    FEATURE_SCAFFOLDING = "feature_scaffolding"
    SECURITY_AUTH = "security_auth"
    ORCHESTRATOR = "orchestrator"
    DOCS = "docs"
    INDEX_REGISTRY_MAINTENANCE = "index_registry_maintenance"
    BULK_OPERATION = "bulk_operation"
    DEBT_CLEANUP = "debt_cleanup"
    TESTS = "tests"
    GENERAL = "general"


class Complexity(StrEnum):
    """How hard a phase is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class BuilderMode(StrEnum):
    """The Builder's working style for a phase; lives in prompts, not in states."""

    TWEAK_LIGHT = "tweak_light"
    SCAFFOLDING_HEAVY = "scaffolding_heavy"
    REFACTOR_HEAVY = "refactor_heavy"
    SCHEMA_HEAVY = "schema_heavy"


@dataclass(frozen=True)
class ModeLimits:
    """How big one attempt's change may be in a builder mode (SPEC §8)."""

    max_files: int
    max_changed_lines: int


MODE_LIMITS: dict[BuilderMode, ModeLimits] = {
    BuilderMode.TWEAK_LIGHT: ModeLimits(max_files=2, max_changed_lines=200),
    BuilderMode.SCAFFOLDING_HEAVY: ModeLimits(max_files=40, max_changed_lines=4_000),
    BuilderMode.REFACTOR_HEAVY: ModeLimits(max_files=150, max_changed_lines=10_000),
    BuilderMode.SCHEMA_HEAVY: ModeLimits(max_files=25, max_changed_lines=3_000),
}
"""Size limits per builder mode; a phase without a mode gets the gate's general limits."""
