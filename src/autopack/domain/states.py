"""Run, tier and phase states exactly as SPEC §3 names them."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """Where a run is in its lifecycle."""

    PLAN_BOOTSTRAP = "PLAN_BOOTSTRAP"
    """The plan document is being turned into tiers and phases."""
    RUN_CREATED = "RUN_CREATED"
    """Tiers and phases exist; the strategy is compiled and frozen."""
    PHASE_QUEUEING = "PHASE_QUEUEING"
    """Every phase is queued with its category, complexity, mode and budgets."""
    PHASE_EXECUTION = "PHASE_EXECUTION"
    """A Builder is working on a phase."""
    GATE = "GATE"
    """A phase's patch is being gated (structure, scope, static checks)."""
    CI_RUNNING = "CI_RUNNING"
    """CI runs on a phase's gated patch."""
    SNAPSHOT_CREATED = "SNAPSHOT_CREATED"
    """A phase's green work is committed and tagged on the integration branch."""
    DONE_SUCCESS = "DONE_SUCCESS"
    """Terminal: every phase completed or was skipped."""
    DONE_FAILED_BUDGET_EXHAUSTED = "DONE_FAILED_BUDGET_EXHAUSTED"
    """Terminal: a run, tier or phase budget was spent."""
    DONE_FAILED_POLICY_VIOLATION = "DONE_FAILED_POLICY_VIOLATION"
    """Terminal: a change broke a safety rule that retries did not cure."""
    DONE_FAILED_REQUIRES_HUMAN_REVIEW = "DONE_FAILED_REQUIRES_HUMAN_REVIEW"
    """Terminal: the Auditor escalated, or a change needs approval to apply."""
    DONE_FAILED_ENVIRONMENT = "DONE_FAILED_ENVIRONMENT"
    """Terminal: git, CI or the machine could not run at all."""
    DONE_FAILED_BUILD_FAILURE = "DONE_FAILED_BUILD_FAILURE"
    """Terminal: a phase failed after all its attempts."""

    @property
    def is_terminal(self) -> bool:
        """True for DONE_* states, from which nothing moves."""
        return self.value.startswith("DONE_")

    @property
    def is_failure(self) -> bool:
        """True for DONE_FAILED_* states."""
        return self.value.startswith("DONE_FAILED_")


class TierState(StrEnum):
    """Where a tier is; derived from its phases."""

    PENDING = "PENDING"
    """No phase of the tier has started."""
    IN_PROGRESS = "IN_PROGRESS"
    """At least one phase has started and none failed."""
    COMPLETE = "COMPLETE"
    """Every phase is COMPLETE or SKIPPED (at least one COMPLETE)."""
    FAILED = "FAILED"
    """A phase of the tier failed."""
    SKIPPED = "SKIPPED"
    """Every phase of the tier was skipped."""

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETE, FAILED and SKIPPED."""
        return self in (TierState.COMPLETE, TierState.FAILED, TierState.SKIPPED)


class PhaseState(StrEnum):
    """Where a phase is in the governed apply path."""

    QUEUED = "QUEUED"
    """Waiting for its turn."""
    EXECUTING = "EXECUTING"
    """A Builder attempt is producing a patch."""
    GATE = "GATE"
    """The patch is being gated."""
    CI_RUNNING = "CI_RUNNING"
    """CI runs on the gated patch."""
    COMPLETE = "COMPLETE"
    """The patch is green and snapshotted."""
    FAILED = "FAILED"
    """Attempts or budgets ran out."""
    SKIPPED = "SKIPPED"
    """Not executed (out of scope for this run, or skipped by policy)."""

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETE, FAILED and SKIPPED."""
        return self in (PhaseState.COMPLETE, PhaseState.FAILED, PhaseState.SKIPPED)
