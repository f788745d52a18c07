"""Response and request bodies of the API that are not run specs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, computed_field

from autopack.db.runs import RunView
from autopack.domain.promotion import promotion_blockers, tier_cleanliness
from autopack.domain.states import PhaseState, RunState, TierState
from autopack.domain.text import NoNul

Counter = Annotated[int, Strict(), Field(ge=0, le=10**12)]
"""Tokens (64-bit columns)."""
SmallCounter = Annotated[int, Strict(), Field(ge=0, le=2**31 - 1)]
"""Attempts and issue counts (32-bit columns)."""


class _FromRows(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PhaseOut(_FromRows):
    """A phase as the API shows it."""

    phase_id: str
    phase_index: int
    tier_id: str
    name: str
    description: str
    task_category: str | None
    complexity: str | None
    builder_mode: str | None
    state: PhaseState
    issue_state: str
    builder_attempts: int
    tokens_used: int
    minor_issues_count: int
    major_issues_count: int
    max_builder_attempts: int
    max_auditor_attempts: int
    incident_token_cap: int
    scope: list[str] | None
    updated_at: datetime


class TierOut(_FromRows):
    """A tier as the API shows it."""

    tier_id: str
    tier_index: int
    name: str
    description: str
    state: TierState
    token_cap: int
    ci_run_cap: int
    max_minor_issues_tolerated: int
    max_major_issues_tolerated: int | None
    tokens_used: int
    ci_runs_used: int
    minor_issues_count: int
    major_issues_count: int
    cleanliness: str
    updated_at: datetime


class RunBrief(_FromRows):
    """A run without its tiers and phases (the run list)."""

    run_id: str
    project_id: str
    project_run_seq: int
    state: RunState
    failure_reason: str | None
    debt_status: str
    safety_profile: str
    run_scope: str
    adoption_stage: int
    token_cap: int
    max_phases: int
    max_duration_minutes: float
    max_minor_issues_total: int
    tokens_used: int
    ci_runs_used: int
    minor_issues_count: int
    major_issues_count: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    repo_path: str | None
    main_branch: str | None
    base_commit: str | None
    promoted_commit: str | None
    promoted_at: datetime | None
    promoted_by: str | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def integration_branch(self) -> str | None:
        """`autopack/integration/{run_id}` when the run has a repository."""
        return f"autopack/integration/{self.run_id}" if self.repo_path else None


class RunOut(RunBrief):
    """A run with its tiers and phases."""

    promotion_eligible_to_main: bool
    promotion_blockers: list[str]
    tiers: list[TierOut]
    phases: list[PhaseOut]

    @classmethod
    def of(cls, view: RunView) -> RunOut:
        """The API shape of a run read."""
        blockers = promotion_blockers(view.run, view.tiers)
        tiers = [{**t._mapping, "cleanliness": tier_cleanliness(t).value} for t in view.tiers]
        return cls.model_validate({
            **view.run._mapping, "tiers": tiers, "phases": view.phases,
            "promotion_eligible_to_main": not blockers, "promotion_blockers": blockers,
        })


class EventOut(_FromRows):
    """One applied state change."""

    id: int
    entity: str
    entity_id: str
    from_state: str | None
    to_state: str
    at: datetime
    reason: str | None
    actor: str


class UpdateStatusRequest(BaseModel):
    """Move a phase to `state`; counters are the phase's absolute values.

    Issue counts given here without keys are recorded as placeholder issues
    (`unspecified_minor__{phase_id}__{n}`) up to the number given; prefer record_issue.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    state: PhaseState
    builder_attempts: SmallCounter | None = None
    tokens_used: Counter | None = None
    minor_issues_count: SmallCounter | None = None
    major_issues_count: SmallCounter | None = None
    reason: Annotated[str, Field(max_length=2_000), NoNul] | None = None


class UpdateStatusResponse(BaseModel):
    """The phase after the move, with where its tier and run now are."""

    run_id: str
    phase_id: str
    tier_id: str
    state: PhaseState
    tier_state: TierState
    run_state: RunState
    transitioned: bool
    phase: PhaseOut


class CommitOut(BaseModel):
    """One commit: its id, subject and commit time."""

    sha: str
    subject: str
    committed_at: str


class IntegrationStatusOut(BaseModel):
    """Where a run's integration branch stands against main."""

    run_id: str
    repo_path: str | None
    branch: str
    exists: bool
    base_commit: str | None
    commit_count: int
    latest_commit: CommitOut | None
    main_branch: str | None
    ahead_of_main: int
    behind_main: int


class Health(BaseModel):
    """Liveness and the database's reachability."""

    status: str
    version: str


class ErrorOut(BaseModel):
    """An error: what is wrong in a sentence; a 422's `field` (None for a safety refusal
    about no field); a refused move's `current` state, `target` and `allowed` moves."""

    detail: str
    field: str | None = None
    current: str | None = None
    target: str | None = None
    allowed: list[str] | None = None


class ProblemOut(BaseModel):
    """One problem of a request that does not fit its schema."""

    type: str
    loc: list[str | int]
    msg: str


class RequestErrorOut(BaseModel):
    """A 422 for a request that does not fit its schema: every problem with its `loc`,
    and the first one's `field` (as a dotted path)."""

    detail: list[ProblemOut]
    field: str | None
