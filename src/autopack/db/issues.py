"""Issue services: record an issue, keep counts of distinct keys, age the backlog.

All SQL for issues and the project backlog lives here. A record runs in the caller's
unit of work after the run row is locked, so records on one run are serialised and a
repeat of a key can only add to `occurrence_count`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from autopack.db.models import Base
from autopack.db.run_lock import lock_active_run
from autopack.domain.errors import NotFound
from autopack.issues.rules import (
    AgingPolicy,
    BacklogStatus,
    IssueSource,
    Severity,
    backlog_status_at_new_run,
    debt_status_for,
    effective_severity,
    issue_state_for,
    worse,
)

_RUNS, _TIERS, _PHASES = (Base.metadata.tables[t] for t in ("runs", "tiers", "phases"))
_ISSUES, _ISSUE_PHASES, _BACKLOG, _PROJECTS, _STRATEGIES = (
    Base.metadata.tables[t] for t in ("issues", "issue_phases", "backlog", "projects",
                                      "strategies")
)
MAX_EVIDENCE = 20


@dataclass(frozen=True)
class IssueReport:
    """One observation of a logical problem."""

    issue_key: str
    severity: Severity
    source: IssueSource
    category: str
    evidence_refs: tuple[str, ...] = ()
    description: str = ""
    expected_fail: bool = False


@dataclass(frozen=True)
class RecordedIssue:
    """The state of an issue after a record."""

    run_id: str
    phase_id: str
    issue_key: str
    severity: str
    effective_severity: str
    occurrence_count: int
    phase_occurrence_count: int
    new_in_run: bool


def _insert_ignore(conn: Connection, table: Table, values: dict[str, Any],
                   keys: list[str]) -> None:
    dialect = conn.dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    conn.execute(maker(table).values(**values).on_conflict_do_nothing(index_elements=keys))


def _merge_evidence(old: Sequence[str], new: Sequence[str]) -> list[str]:
    merged = list(old)
    for ref in new:
        if ref not in merged:
            merged.append(ref)
    return merged[-MAX_EVIDENCE:]


def next_project_run(conn: Connection, project_id: str, now: datetime) -> int:
    """Count a new run of `project_id` and return its sequence number (locks the project)."""
    _insert_ignore(conn, _PROJECTS, {"project_id": project_id, "run_count": 0,
                                        "created_at": now}, ["project_id"])
    seq = conn.execute(
        update(_PROJECTS).where(_PROJECTS.c.project_id == project_id)
        .values(run_count=_PROJECTS.c.run_count + 1).returning(_PROJECTS.c.run_count)
    ).scalar_one()
    return int(seq)


def age_backlog(conn: Connection, project_id: str, seq: int, policy: AgingPolicy) -> None:
    """At a new run (number `seq`): age open issues, flag aged minors, resolve unseen ones."""
    rows = conn.execute(
        select(_BACKLOG).where(_BACKLOG.c.project_id == project_id,
                               _BACKLOG.c.status != BacklogStatus.RESOLVED.value)
        .order_by(_BACKLOG.c.issue_key).with_for_update()
    ).all()
    for row in rows:
        age_in_runs = seq - row.opened_run_seq + 1
        status = backlog_status_at_new_run(
            BacklogStatus(row.status), Severity(row.base_severity), age_in_runs,
            row.age_in_tiers, seq - row.last_seen_run_seq - 1, policy)
        conn.execute(update(_BACKLOG).where(_BACKLOG.c.id == row.id)
                        .values(age_in_runs=age_in_runs, status=status.value))


def record_issue(conn: Connection, run_id: str, phase_id: str, report: IssueReport,
                 now: datetime) -> RecordedIssue:
    """Record one observation of `report.issue_key` in a phase, and refresh every count."""
    run = lock_active_run(conn, run_id, "(record issue)")
    phase = conn.execute(
        select(_PHASES.c.phase_id, _PHASES.c.tier_id, _PHASES.c.phase_index)
        .where(_PHASES.c.run_id == run_id, _PHASES.c.phase_id == phase_id)
    ).one_or_none()
    if phase is None:
        raise NotFound("phase", phase_id)
    recorded = record_in_locked_run(conn, run, phase, report, now)
    refresh_counts(conn, run, now)
    return recorded


def record_in_locked_run(conn: Connection, run: Any, phase: Any, report: IssueReport,
                         now: datetime, policy: dict[str, Any] | None = None
                         ) -> RecordedIssue:
    """Record into a run whose row the caller has locked; counts are refreshed by the caller
    (`policy`: the run's `issue_policy`, read here when not given)."""
    key, run_id = report.issue_key, run.run_id
    backlog_status = _touch_backlog(conn, run, phase, report, now)
    effective = _graded(policy or issue_policy(conn, run_id), report.category,
                        effective_severity(report.severity, backlog_status))
    issue = conn.execute(
        select(_ISSUES).where(_ISSUES.c.run_id == run_id, _ISSUES.c.issue_key == key)
    ).one_or_none()
    if issue is None:
        conn.execute(insert(_ISSUES).values(
            run_id=run_id, issue_key=key, severity=report.severity.value,
            effective_severity=effective.value, source=report.source.value,
            category=report.category, description=report.description,
            expected_fail=report.expected_fail, occurrence_count=1,
            first_phase_index=phase.phase_index, last_phase_index=phase.phase_index,
            evidence_refs=_merge_evidence([], report.evidence_refs), first_seen_at=now,
            last_seen_at=now))
        severity, occurrences = report.severity, 1
    else:
        severity = worse(Severity(issue.severity), report.severity)
        effective = worse(Severity(issue.effective_severity), effective)
        occurrences = issue.occurrence_count + 1
        conn.execute(update(_ISSUES).where(_ISSUES.c.id == issue.id).values(
            severity=severity.value, effective_severity=effective.value,
            occurrence_count=_ISSUES.c.occurrence_count + 1,
            first_phase_index=min(issue.first_phase_index, phase.phase_index),
            last_phase_index=max(issue.last_phase_index, phase.phase_index),
            evidence_refs=_merge_evidence(issue.evidence_refs, report.evidence_refs),
            description=issue.description or report.description, last_seen_at=now))
    in_phase = _touch_issue_phase(conn, run_id, phase, report, now)
    return RecordedIssue(run_id, phase.phase_id, key, severity.value, effective.value,
                         occurrences, in_phase, issue is None)


def issue_policy(conn: Connection, run_id: str) -> dict[str, Any]:
    """How the run's frozen strategy grades issues (its `issues` section)."""
    document = conn.execute(select(_STRATEGIES.c.document)
                            .where(_STRATEGIES.c.run_id == run_id)).scalar_one()
    policy: dict[str, Any] = json.loads(document)["issues"]
    return policy


def _graded(policy: dict[str, Any], category: str, severity: Severity) -> Severity:
    """`severity` as the run's strategy grades issues of `category`: raised by its
    `severity_upgrades` (high-risk issue categories, the ruleset's), or minor whatever it
    was at adoption stage 0 ("all issues minor")."""
    if policy["all_minor"]:
        return Severity.MINOR
    upgrade = policy["severity_upgrades"].get(category)
    return severity if upgrade is None else worse(severity, Severity(upgrade))


def _touch_issue_phase(conn: Connection, run_id: str, phase: Any, report: IssueReport,
                       now: datetime) -> int:
    mine = and_(_ISSUE_PHASES.c.run_id == run_id, _ISSUE_PHASES.c.issue_key == report.issue_key,
                _ISSUE_PHASES.c.phase_id == phase.phase_id)
    row = conn.execute(select(_ISSUE_PHASES).where(mine)).one_or_none()
    if row is None:
        conn.execute(insert(_ISSUE_PHASES).values(
            run_id=run_id, issue_key=report.issue_key, phase_id=phase.phase_id,
            tier_id=phase.tier_id, occurrence_count=1,
            evidence_refs=_merge_evidence([], report.evidence_refs), first_seen_at=now,
            last_seen_at=now))
        return 1
    conn.execute(update(_ISSUE_PHASES).where(_ISSUE_PHASES.c.id == row.id).values(
        occurrence_count=_ISSUE_PHASES.c.occurrence_count + 1,
        evidence_refs=_merge_evidence(row.evidence_refs, report.evidence_refs),
        last_seen_at=now))
    return int(row.occurrence_count) + 1


def _touch_backlog(conn: Connection, run: Any, phase: Any, report: IssueReport,
                   now: datetime) -> BacklogStatus:
    """Count this observation in the project backlog; return the status it had."""
    project, key = run.project_id, report.issue_key
    _insert_ignore(conn, _BACKLOG, {
        "project_id": project, "issue_key": key, "category": report.category,
        "base_severity": report.severity.value, "status": BacklogStatus.OPEN.value,
        "seen_in_runs": 0, "seen_in_tiers": 0, "occurrence_count": 0, "age_in_runs": 1,
        "age_in_tiers": 0, "opened_run_seq": run.project_run_seq,
        "last_seen_run_seq": run.project_run_seq, "first_seen_run_id": run.run_id,
        "last_seen_run_id": run.run_id, "last_seen_at": now,
    }, ["project_id", "issue_key"])
    row = conn.execute(
        select(_BACKLOG).where(_BACKLOG.c.project_id == project, _BACKLOG.c.issue_key == key)
        .with_for_update()
    ).one()
    seen_run = conn.execute(select(_ISSUES.c.id).where(
        _ISSUES.c.run_id == run.run_id, _ISSUES.c.issue_key == key)).first() is not None
    seen_tier = conn.execute(select(_ISSUE_PHASES.c.id).where(
        _ISSUE_PHASES.c.run_id == run.run_id, _ISSUE_PHASES.c.issue_key == key,
        _ISSUE_PHASES.c.tier_id == phase.tier_id)).first() is not None
    status = BacklogStatus(row.status)
    values: dict[str, Any] = {
        "occurrence_count": _BACKLOG.c.occurrence_count + 1,
        "seen_in_runs": _BACKLOG.c.seen_in_runs + (0 if seen_run else 1),
        "seen_in_tiers": _BACKLOG.c.seen_in_tiers + (0 if seen_tier else 1),
        "age_in_tiers": _BACKLOG.c.age_in_tiers + (0 if seen_tier else 1),
        "base_severity": worse(Severity(row.base_severity), report.severity).value,
        "last_seen_at": now,
    }
    if run.project_run_seq >= row.last_seen_run_seq:
        # runs overlap: an older run still going does not move the last sighting back
        values.update(last_seen_run_seq=run.project_run_seq, last_seen_run_id=run.run_id)
    if status is BacklogStatus.RESOLVED:
        # Seen again: reopened, and its age starts over from the project's newest run
        # (not from the run that saw it, which may be older).
        newest = conn.execute(select(_PROJECTS.c.run_count).where(
            _PROJECTS.c.project_id == project)).scalar_one()
        values.update(status=BacklogStatus.OPEN.value, opened_run_seq=newest,
                      last_seen_run_seq=newest, last_seen_run_id=run.run_id,
                      age_in_runs=1, age_in_tiers=1)
    conn.execute(update(_BACKLOG).where(_BACKLOG.c.id == row.id).values(**values))
    return BacklogStatus.OPEN if status is BacklogStatus.RESOLVED else status


def refresh_counts(conn: Connection, run: Any, now: datetime) -> None:
    """Recount distinct issue keys by effective severity for every phase, tier and the run."""
    run_id = run.run_id
    join = _ISSUE_PHASES.join(_ISSUES, and_(_ISSUES.c.run_id == _ISSUE_PHASES.c.run_id,
                                            _ISSUES.c.issue_key == _ISSUE_PHASES.c.issue_key))
    severity = _ISSUES.c.effective_severity
    by_phase = _counts(conn.execute(
        select(_ISSUE_PHASES.c.phase_id, severity, func.count())
        .select_from(join).where(_ISSUE_PHASES.c.run_id == run_id)
        .group_by(_ISSUE_PHASES.c.phase_id, severity)).all())
    by_tier = _counts(conn.execute(
        select(_ISSUE_PHASES.c.tier_id, severity, func.count(func.distinct(_ISSUES.c.id)))
        .select_from(join).where(_ISSUE_PHASES.c.run_id == run_id)
        .group_by(_ISSUE_PHASES.c.tier_id, severity)).all())
    totals = _counts(conn.execute(
        select(_ISSUES.c.run_id, severity, func.count())
        .where(_ISSUES.c.run_id == run_id).group_by(_ISSUES.c.run_id, severity)).all())
    # Only rows whose counts change are written, so `updated_at` stays the time of the
    # row's last real change (and the views of untouched phases stay current).
    for phase_id, (minor, major) in by_phase.items():
        conn.execute(update(_PHASES).where(
            _PHASES.c.run_id == run_id, _PHASES.c.phase_id == phase_id,
            or_(_PHASES.c.minor_issues_count != minor,
                _PHASES.c.major_issues_count != major)).values(
            minor_issues_count=minor, major_issues_count=major,
            issue_state=issue_state_for(minor, major).value, updated_at=now))
    for tier_id, (minor, major) in by_tier.items():
        conn.execute(update(_TIERS).where(
            _TIERS.c.run_id == run_id, _TIERS.c.tier_id == tier_id,
            or_(_TIERS.c.minor_issues_count != minor,
                _TIERS.c.major_issues_count != major)).values(
            minor_issues_count=minor, major_issues_count=major, updated_at=now))
    minor, major = totals.get(run_id, (0, 0))
    conn.execute(update(_RUNS).where(_RUNS.c.run_id == run_id).values(
        minor_issues_count=minor, major_issues_count=major,
        debt_status=debt_status_for(minor, run.max_minor_issues_total).value,
        version=_RUNS.c.version + 1, updated_at=now))


def _counts(rows: Sequence[Any]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for owner, severity, count in rows:
        minor, major = out.get(owner, (0, 0))
        if severity == Severity.MAJOR.value:
            major = count
        else:
            minor = count
        out[owner] = (minor, major)
    return out


def run_issues(conn: Connection, run_id: str) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
    """A run's issue rows and issue-phase rows, in key order."""
    issues = conn.execute(select(_ISSUES).where(_ISSUES.c.run_id == run_id)
                             .order_by(_ISSUES.c.issue_key)).all()
    phases = conn.execute(select(_ISSUE_PHASES).where(_ISSUE_PHASES.c.run_id == run_id)
                             .order_by(_ISSUE_PHASES.c.issue_key, _ISSUE_PHASES.c.id)).all()
    return issues, phases


def backlog(conn: Connection, project_id: str) -> Sequence[Row[Any]]:
    """A project's backlog rows in key order; NotFound for an unknown project."""
    if conn.execute(select(_PROJECTS.c.project_id)
                       .where(_PROJECTS.c.project_id == project_id)).first() is None:
        raise NotFound("project", project_id)
    return conn.execute(select(_BACKLOG).where(_BACKLOG.c.project_id == project_id)
                           .order_by(_BACKLOG.c.issue_key)).all()


def backlog_for_keys(conn: Connection, project_id: str, keys: Sequence[str]) -> Sequence[Any]:
    """The backlog rows of some keys of a project."""
    if not keys:
        return []
    return conn.execute(select(_BACKLOG).where(
        _BACKLOG.c.project_id == project_id, _BACKLOG.c.issue_key.in_(keys))).all()


def top_backlog(conn: Connection, project_id: str, limit: int) -> Sequence[Row[Any]]:
    """The backlog view of SPEC §11: keys by seen_in_runs, seen_in_tiers, occurrences."""
    backlog(conn, project_id)
    return conn.execute(
        select(_BACKLOG).where(_BACKLOG.c.project_id == project_id)
        .order_by(_BACKLOG.c.seen_in_runs.desc(), _BACKLOG.c.seen_in_tiers.desc(),
                  _BACKLOG.c.occurrence_count.desc(), _BACKLOG.c.issue_key).limit(limit)
    ).all()


def open_backlog_with_evidence(conn: Connection, project_id: str
                               ) -> list[tuple[Row[Any], list[str]]]:
    """A project's unresolved backlog rows, each with the evidence its issues recorded."""
    rows = conn.execute(
        select(_BACKLOG).where(_BACKLOG.c.project_id == project_id,
                               _BACKLOG.c.status != BacklogStatus.RESOLVED.value)
        .order_by(_BACKLOG.c.issue_key)
    ).all()
    if not rows:
        return []
    evidence: dict[str, list[str]] = {}
    found = conn.execute(
        select(_ISSUES.c.issue_key, _ISSUES.c.evidence_refs)
        .join(_RUNS, _RUNS.c.run_id == _ISSUES.c.run_id)
        .where(_RUNS.c.project_id == project_id,
               _ISSUES.c.issue_key.in_([r.issue_key for r in rows]))
        .order_by(_ISSUES.c.issue_key, _ISSUES.c.id)
    ).all()
    for key, refs in found:
        evidence[key] = _merge_evidence(evidence.get(key, []), refs or [])
    return [(row, evidence.get(row.issue_key, [])) for row in rows]
