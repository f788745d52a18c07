"""Issues: record one, read a run's index, read a project's backlog."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from autopack.api.deps import PhaseId, RunId, SupervisorDep, in_writer_lane
from autopack.api.json_body import JsonTextRoute
from autopack.db.issues import IssueReport
from autopack.domain.ids import ID_PATTERN
from autopack.domain.text import NoNul
from autopack.issues.rules import DebtStatus, IssueSource, IssueState, Severity
from autopack.supervisor.service import Supervisor

router = APIRouter(tags=["issues"], route_class=JsonTextRoute)

ISSUE_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$"
CATEGORY_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"


class RecordIssueRequest(BaseModel):
    """One observation of a logical problem, identified by its stable `issue_key`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    issue_key: Annotated[str, Field(pattern=ISSUE_KEY_PATTERN, max_length=200)]
    severity: Severity
    source: IssueSource
    category: Annotated[str, Field(pattern=CATEGORY_PATTERN, max_length=64)]
    evidence_refs: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=500), NoNul]], Field(max_length=20)
    ] = []
    description: Annotated[str, Field(max_length=4_000), NoNul] = ""
    expected_fail: StrictBool = False


class PhaseIssueCounts(BaseModel):
    """A phase's distinct issue counts after the record."""

    minor_issue_count: int
    major_issue_count: int
    issue_state: IssueState


class RunIssueCounts(BaseModel):
    """A run's distinct issue counts after the record."""

    minor_issue_count: int
    major_issue_count: int
    debt_status: DebtStatus


class RecordIssueResponse(BaseModel):
    """The issue as recorded, with the counts it changed."""

    run_id: str
    phase_id: str
    issue_key: str
    severity: Severity
    effective_severity: Severity
    occurrence_count: int
    phase_occurrence_count: int
    new_in_run: bool
    phase: PhaseIssueCounts
    run: RunIssueCounts


@router.post("/runs/{run_id}/phases/{phase_id}/record_issue",
             response_model=RecordIssueResponse,
             responses={404: {"description": "unknown run or phase"},
                        409: {"description": "the run is terminal"}})
async def record_issue(request: Request, run_id: RunId, phase_id: PhaseId,
                       body: RecordIssueRequest,
                       supervisor: SupervisorDep) -> RecordIssueResponse:
    """Record an issue in a phase. Idempotent per `issue_key` within a run.

    A repeat adds to `occurrence_count` and to where the key was seen; counts of phase,
    tier and run are of distinct keys and do not change on a repeat.
    """
    return await in_writer_lane(request, lambda: _record(run_id, phase_id, body, supervisor))


def _record(run_id: str, phase_id: str, body: RecordIssueRequest,
            supervisor: Supervisor) -> RecordIssueResponse:
    recorded, view = supervisor.record_issue(run_id, phase_id, IssueReport(
        body.issue_key, body.severity, body.source, body.category,
        tuple(body.evidence_refs), body.description, body.expected_fail))
    phase = view.phase(phase_id)
    return RecordIssueResponse(
        run_id=run_id, phase_id=phase_id, issue_key=recorded.issue_key,
        severity=Severity(recorded.severity),
        effective_severity=Severity(recorded.effective_severity),
        occurrence_count=recorded.occurrence_count,
        phase_occurrence_count=recorded.phase_occurrence_count,
        new_in_run=recorded.new_in_run,
        phase=PhaseIssueCounts(minor_issue_count=phase.minor_issues_count,
                               major_issue_count=phase.major_issues_count,
                               issue_state=IssueState(phase.issue_state)),
        run=RunIssueCounts(minor_issue_count=view.run.minor_issues_count,
                           major_issue_count=view.run.major_issues_count,
                           debt_status=DebtStatus(view.run.debt_status)),
    )


@router.get("/runs/{run_id}/issues/index", responses={404: {"description": "unknown run"}})
def issue_index(run_id: RunId, supervisor: SupervisorDep) -> dict[str, Any]:
    """The run issue index: every key with its severity, occurrences, tiers and phases."""
    return supervisor.issue_index(run_id)


@router.get("/project/issues/backlog", responses={404: {"description": "unknown project"}})
def project_backlog(
    supervisor: SupervisorDep,
    project_id: Annotated[str, Query(min_length=1, max_length=128, pattern=ID_PATTERN)] = (
        "default"),
) -> dict[str, Any]:
    """The project's issue backlog across runs, with ages and statuses."""
    return supervisor.backlog(project_id)
