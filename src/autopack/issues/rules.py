"""Pure issue rules: severities, issue state, debt status, aging of the backlog."""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """How bad an issue is."""

    MINOR = "minor"
    MAJOR = "major"


class IssueSource(StrEnum):
    """Who found an issue."""

    TEST = "test"
    PROBE = "probe"
    CI = "ci"
    STATIC_CHECK = "static_check"
    BUILDER_SELF_DOUBT = "builder_self_doubt"
    AUDITOR = "auditor"
    GATE = "gate"


class IssueState(StrEnum):
    """A phase's summary of its issues."""

    NO_ISSUES = "no_issues"
    HAS_MINOR_ISSUES = "has_minor_issues"
    HAS_MAJOR_ISSUES = "has_major_issues"


class DebtStatus(StrEnum):
    """A run's minor-issue debt."""

    CLEAN = "clean"
    HAS_MINOR_ISSUES = "has_minor_issues"
    EXCESS_MINOR_ISSUES = "excess_minor_issues"


class BacklogStatus(StrEnum):
    """Where a project-level issue stands."""

    OPEN = "open"
    NEEDS_CLEANUP = "needs_cleanup"
    RESOLVED = "resolved"


class AgingPolicy(BaseModel):
    """When minor issues age into effective majors, and when unseen issues resolve."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    minor_issue_aging_runs_threshold: int = Field(3, gt=0)
    minor_issue_aging_tiers_threshold: int = Field(2, gt=0)
    resolve_after_unseen_runs: int = Field(3, gt=0)


def worse(a: Severity, b: Severity) -> Severity:
    """The more severe of two severities."""
    return Severity.MAJOR if Severity.MAJOR in (a, b) else Severity.MINOR


def issue_state_for(minor: int, major: int) -> IssueState:
    """A phase's issue state from its distinct minor and major counts."""
    if major:
        return IssueState.HAS_MAJOR_ISSUES
    return IssueState.HAS_MINOR_ISSUES if minor else IssueState.NO_ISSUES


def debt_status_for(minor: int, max_minor_total: int) -> DebtStatus:
    """A run's debt status from its distinct minor count and its cap."""
    if minor > max_minor_total:
        return DebtStatus.EXCESS_MINOR_ISSUES
    return DebtStatus.HAS_MINOR_ISSUES if minor else DebtStatus.CLEAN


def backlog_status_at_new_run(
    status: BacklogStatus, base_severity: Severity, age_in_runs: int, age_in_tiers: int,
    unseen_runs: int, policy: AgingPolicy,
) -> BacklogStatus:
    """A backlog issue's status when a new run of its project is created.

    `age_in_runs` counts the new run; `unseen_runs` is how many runs before it did not
    see the issue.
    """
    if status is BacklogStatus.RESOLVED:
        return status
    if unseen_runs >= policy.resolve_after_unseen_runs:
        return BacklogStatus.RESOLVED
    aged = (age_in_runs >= policy.minor_issue_aging_runs_threshold
            or age_in_tiers >= policy.minor_issue_aging_tiers_threshold)
    if base_severity is Severity.MINOR and aged:
        return BacklogStatus.NEEDS_CLEANUP
    return status


def effective_severity(severity: Severity, backlog_status: BacklogStatus | None) -> Severity:
    """An aged minor issue counts as major for routing and thresholds."""
    if backlog_status is BacklogStatus.NEEDS_CLEANUP:
        return Severity.MAJOR
    return severity


_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


def issue_key(prefix: str, name: str) -> str:
    """`{prefix}__{name}` within the issue-key alphabet (`/` becomes `.`)."""
    cleaned = _KEY_UNSAFE.sub("_", name.replace("/", ".")).strip("._-:") or "unnamed"
    return f"{prefix}__{cleaned}"[:200]
