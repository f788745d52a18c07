"""The JSON documents of SPEC §5, built from database rows (pure: rows in, dicts out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Doc = dict[str, Any]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def phase_issue_document(
    phase: Any, issues: Mapping[str, Any], issue_phases: Sequence[Any],
    backlog: Mapping[str, Any],
) -> Doc:
    """`issues/phase_{k:02d}_{phase_id}_issues.json` for one phase.

    It says what held in its own run: `last_seen_run` is that run (the issue is listed
    because the run saw it), `first_seen_run` the project's first (set once). The
    project's latest run lives in the backlog; putting it here made a file that later
    runs changed without rewriting, and a snapshot retaken after a crash differ."""
    entries = []
    for link in issue_phases:
        if link.phase_id != phase.phase_id:
            continue
        issue, seen = issues[link.issue_key], backlog.get(link.issue_key)
        entries.append({
            "issue_key": link.issue_key,
            "severity": issue.severity,
            "effective_severity": issue.effective_severity,
            "source": issue.source,
            "category": issue.category,
            "task_category": phase.task_category,
            "complexity": phase.complexity,
            "expected_fail": issue.expected_fail,
            "occurrence_count": link.occurrence_count,
            "first_seen_run": seen.first_seen_run_id if seen else None,
            "last_seen_run": link.run_id,
            "evidence_refs": list(link.evidence_refs),
            "description": issue.description,
        })
    return {
        "phase_id": phase.phase_id,
        "tier_id": phase.tier_id,
        "issues": entries,
        "minor_issue_count": phase.minor_issues_count,
        "major_issue_count": phase.major_issues_count,
        "issue_state": phase.issue_state,
    }


def run_index_document(run: Any, issues: Sequence[Any], issue_phases: Sequence[Any]) -> Doc:
    """`issues/run_issue_index.json`: every key of the run with where it was seen."""
    by_key: dict[str, Doc] = {}
    for issue in issues:
        links = [p for p in issue_phases if p.issue_key == issue.issue_key]
        by_key[issue.issue_key] = {
            "category": issue.category,
            "severity": issue.severity,
            "effective_severity": issue.effective_severity,
            "source": issue.source,
            "first_phase_index": issue.first_phase_index,
            "last_phase_index": issue.last_phase_index,
            "occurrence_count": issue.occurrence_count,
            "seen_in_tiers": sorted({p.tier_id for p in links}),
            "seen_in_phases": sorted({p.phase_id for p in links}),
            "evidence_refs": list(issue.evidence_refs),
        }
    return {
        "run_id": run.run_id,
        "project_id": run.project_id,
        "minor_issue_count": run.minor_issues_count,
        "major_issue_count": run.major_issues_count,
        "debt_status": run.debt_status,
        "issues_by_key": by_key,
    }


def backlog_entry(row: Any) -> Doc:
    """One backlog key as the documents and the API show it."""
    return {
        "issue_key": row.issue_key,
        "category": row.category,
        "base_severity": row.base_severity,
        "status": row.status,
        "age_in_runs": row.age_in_runs,
        "age_in_tiers": row.age_in_tiers,
        "seen_in_runs": row.seen_in_runs,
        "seen_in_tiers": row.seen_in_tiers,
        "occurrence_count": row.occurrence_count,
        "first_seen_run_id": row.first_seen_run_id,
        "last_seen_run_id": row.last_seen_run_id,
        "last_seen_at": _iso(row.last_seen_at),
    }


def backlog_document(project_id: str, rows: Sequence[Any]) -> Doc:
    """`project_issue_backlog.json` for one project."""
    entries = {}
    for row in rows:
        entry = backlog_entry(row)
        del entry["issue_key"]
        entries[row.issue_key] = entry
    return {"project_id": project_id, "issues_by_key": entries}
