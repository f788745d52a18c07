"""Pure issue rules: severities, issue state, debt status, backlog aging."""

from __future__ import annotations

import pytest

from autopack.issues.rules import (
    AgingPolicy,
    BacklogStatus,
    DebtStatus,
    IssueState,
    Severity,
    backlog_status_at_new_run,
    debt_status_for,
    effective_severity,
    issue_state_for,
    worse,
)

MINOR, MAJOR = Severity.MINOR, Severity.MAJOR
OPEN, CLEANUP, RESOLVED = BacklogStatus.OPEN, BacklogStatus.NEEDS_CLEANUP, BacklogStatus.RESOLVED


def test_worse_is_major_when_either_is() -> None:
    assert [worse(a, b) for a, b in [(MINOR, MINOR), (MINOR, MAJOR), (MAJOR, MINOR),
                                     (MAJOR, MAJOR)]] == [MINOR, MAJOR, MAJOR, MAJOR]


def test_issue_state() -> None:
    assert issue_state_for(0, 0) is IssueState.NO_ISSUES
    assert issue_state_for(2, 0) is IssueState.HAS_MINOR_ISSUES
    assert issue_state_for(2, 1) is IssueState.HAS_MAJOR_ISSUES


def test_debt_status() -> None:
    assert debt_status_for(0, 3) is DebtStatus.CLEAN
    assert debt_status_for(3, 3) is DebtStatus.HAS_MINOR_ISSUES
    assert debt_status_for(4, 3) is DebtStatus.EXCESS_MINOR_ISSUES


@pytest.mark.parametrize(("status", "severity", "runs", "tiers", "unseen", "expected"), [
    (OPEN, MINOR, 1, 1, 0, OPEN),
    (OPEN, MINOR, 2, 1, 1, OPEN),
    (OPEN, MINOR, 3, 1, 0, CLEANUP),       # runs threshold
    (OPEN, MINOR, 1, 2, 0, CLEANUP),       # tiers threshold
    (OPEN, MAJOR, 5, 5, 0, OPEN),          # majors do not age: they already are major
    (CLEANUP, MINOR, 4, 2, 2, CLEANUP),
    (CLEANUP, MINOR, 6, 2, 3, RESOLVED),   # unseen for resolve_after_unseen_runs
    (OPEN, MAJOR, 4, 1, 3, RESOLVED),
    (RESOLVED, MINOR, 9, 9, 9, RESOLVED),  # only a new sighting reopens
])
def test_backlog_status_at_new_run(status: BacklogStatus, severity: Severity, runs: int,
                                   tiers: int, unseen: int, expected: BacklogStatus) -> None:
    assert backlog_status_at_new_run(status, severity, runs, tiers, unseen,
                                     AgingPolicy()) is expected


def test_thresholds_are_configurable() -> None:
    policy = AgingPolicy(minor_issue_aging_runs_threshold=5,
                         minor_issue_aging_tiers_threshold=9, resolve_after_unseen_runs=1)
    assert backlog_status_at_new_run(OPEN, MINOR, 4, 1, 0, policy) is OPEN
    assert backlog_status_at_new_run(OPEN, MINOR, 5, 1, 0, policy) is CLEANUP
    assert backlog_status_at_new_run(OPEN, MINOR, 2, 1, 1, policy) is RESOLVED


def test_effective_severity() -> None:
    assert effective_severity(MINOR, CLEANUP) is MAJOR
    assert effective_severity(MINOR, OPEN) is MINOR
    assert effective_severity(MINOR, None) is MINOR
    assert effective_severity(MAJOR, OPEN) is MAJOR
