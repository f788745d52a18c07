"""Budgets with the SPEC §9 defaults; every number can be overridden by configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from autopack.domain.categories import SafetyProfile

MAX_TOKENS = 10**12
"""The largest token cap of a run (the API's limit too)."""
MAX_PHASE_TOKENS = 10**9
"""The largest token cap of a phase: a tier's cap (a multiple of its phases' sum) then
fits the database's 64-bit column."""
MAX_COUNT = 1_000
"""The largest attempt count or per-phase allowance (multiplied by up to 10,000 phases,
still a 32-bit count)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RunBudgetDefaults(_Frozen):
    """Run-level caps. `max_minor_issues_total` None means phases x minor_issues_per_phase."""

    token_cap: int = Field(5_000_000, gt=0, le=MAX_TOKENS)
    max_phases: int = Field(25, gt=0, le=10_000)
    max_duration_minutes: float = Field(120.0, gt=0, le=525_600)
    max_minor_issues_total: int | None = Field(None, ge=0, le=10_000_000)
    minor_issues_per_phase: int = Field(3, ge=0, le=MAX_COUNT)


class TierBudgetDefaults(_Frozen):
    """How tier caps derive from their phases."""

    token_cap_multiplier: int = Field(3, gt=0, le=MAX_COUNT)
    ci_runs_per_phase: int = Field(2, gt=0, le=MAX_COUNT)
    minor_issues_per_phase_normal: int = Field(2, ge=0, le=MAX_COUNT)
    minor_issues_per_phase_safety_critical: int = Field(1, ge=0, le=MAX_COUNT)
    max_major_issues_safety_critical: int = Field(0, ge=0, le=10_000_000)


class PhaseBudgetDefaults(_Frozen):
    """Per-phase caps."""

    max_builder_attempts: int = Field(3, gt=0, le=MAX_COUNT)
    max_auditor_attempts: int = Field(2, ge=0, le=100)
    incident_token_cap: int = Field(300_000, gt=0, le=MAX_PHASE_TOKENS)


class BudgetDefaults(_Frozen):
    """All budget defaults in one place."""

    run: RunBudgetDefaults = RunBudgetDefaults()
    tier: TierBudgetDefaults = TierBudgetDefaults()
    phase: PhaseBudgetDefaults = PhaseBudgetDefaults()


class RunCaps(_Frozen):
    """The caps one run holds."""

    token_cap: int
    max_phases: int
    max_duration_minutes: float
    max_minor_issues_total: int


class TierCaps(_Frozen):
    """The caps one tier holds; None means no cap."""

    token_cap: int
    ci_run_cap: int
    max_minor_issues_tolerated: int
    max_major_issues_tolerated: int | None


def run_caps(
    defaults: BudgetDefaults,
    phase_count: int,
    token_cap: int | None = None,
    max_phases: int | None = None,
    max_duration_minutes: float | None = None,
) -> RunCaps:
    """A run's caps: explicit values win over defaults."""
    d = defaults.run
    minor_total = d.max_minor_issues_total
    if minor_total is None:
        minor_total = phase_count * d.minor_issues_per_phase
    return RunCaps(
        token_cap=token_cap if token_cap is not None else d.token_cap,
        max_phases=max_phases if max_phases is not None else d.max_phases,
        max_duration_minutes=(
            max_duration_minutes if max_duration_minutes is not None else d.max_duration_minutes
        ),
        max_minor_issues_total=minor_total,
    )


def tier_caps(
    defaults: BudgetDefaults, incident_token_caps: list[int], safety_profile: SafetyProfile
) -> TierCaps:
    """A tier's caps, derived from its phases' incident token caps (SPEC §9)."""
    t = defaults.tier
    phases = len(incident_token_caps)
    critical = safety_profile is SafetyProfile.SAFETY_CRITICAL
    per_phase = (
        t.minor_issues_per_phase_safety_critical if critical else t.minor_issues_per_phase_normal
    )
    return TierCaps(
        token_cap=t.token_cap_multiplier * sum(incident_token_caps),
        ci_run_cap=t.ci_runs_per_phase * phases,
        max_minor_issues_tolerated=per_phase * phases,
        max_major_issues_tolerated=t.max_major_issues_safety_critical if critical else None,
    )
