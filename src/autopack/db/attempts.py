"""Attempt and snapshot services: the stored canonical diff of every attempt, and the
commit and tag of every completed phase. All SQL for attempts and snapshots lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from autopack.ci.runner import CommandResult
from autopack.db.models import Base, utcnow
from autopack.domain.errors import Conflict, NotFound
from autopack.vcs.changes import Change
from autopack.vcs.scope import Refusal

_ATTEMPTS, _SNAPSHOTS, _COMMAND_RUNS, _REVIEWS = (
    Base.metadata.tables[t] for t in ("attempts", "snapshots", "command_runs", "reviews")
)


def next_attempt_number(conn: Connection, run_id: str, phase_id: str) -> int:
    """1 for a phase's first stored attempt, then 2, 3, ..."""
    highest = conn.execute(
        select(func.max(_ATTEMPTS.c.number))
        .where(_ATTEMPTS.c.run_id == run_id, _ATTEMPTS.c.phase_id == phase_id)
    ).scalar_one()
    return int(highest or 0) + 1


def open_attempt(
    conn: Connection, run_id: str, phase_id: str, number: int, base: str, author: str
) -> None:
    """Store an attempt as it opens: no diff yet, gate and outcome `pending`."""
    conn.execute(insert(_ATTEMPTS).values(
        run_id=run_id, phase_id=phase_id, number=number, base_commit=base, diff=b"",
        diff_sha256="", diff_truncated=False, files_changed=0, lines_changed=0,
        gate_status="pending", refusals=[], created_at=utcnow(), author=author,
        outcome="pending",
    ))


def store_change(
    conn: Connection, run_id: str, phase_id: str, number: int, change: Change
) -> None:
    """Replace a stored attempt's diff with what its worktree now holds."""
    conn.execute(
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.run_id == run_id, _ATTEMPTS.c.phase_id == phase_id,
               _ATTEMPTS.c.number == number)
        .values(base_commit=change.base, diff=change.diff, diff_sha256=change.diff_sha256,
                diff_truncated=change.truncated, files_changed=len(change.files),
                lines_changed=change.changed_lines)
    )


def set_outcome(conn: Connection, run_id: str, phase_id: str, number: int, outcome: str,
                failure: str | None = None) -> None:
    """Set an attempt's outcome: `green` (awaiting the Auditor), `ready` (its snapshot
    may be taken), `failed` with why, or `interrupted`."""
    conn.execute(
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.run_id == run_id, _ATTEMPTS.c.phase_id == phase_id,
               _ATTEMPTS.c.number == number)
        .values(outcome=outcome, failure=None if failure is None else failure[:20_000])
    )


def failed_attempts(conn: Connection, run_id: str, phase_id: str) -> Sequence[Any]:
    """A phase's failed attempts (author, diff hash, failure), newest first."""
    return conn.execute(
        select(_ATTEMPTS.c.number, _ATTEMPTS.c.author, _ATTEMPTS.c.diff_sha256,
               _ATTEMPTS.c.failure)
        .where(_ATTEMPTS.c.run_id == run_id, _ATTEMPTS.c.phase_id == phase_id,
               _ATTEMPTS.c.outcome == "failed")
        .order_by(_ATTEMPTS.c.number.desc())
    ).all()


def record_review(conn: Connection, run_id: str, phase_id: str, attempt_number: int,
                  reason: str, verdict: str, notes: str, patch: str | None, tokens: int
                  ) -> int:
    """Keep one Auditor call; returns its number within the phase (1, 2, ...)."""
    last = last_review(conn, run_id, phase_id)
    number = (last.number if last is not None else 0) + 1
    conn.execute(insert(_REVIEWS).values(
        run_id=run_id, phase_id=phase_id, number=number, attempt_number=attempt_number,
        reason=reason, verdict=verdict, notes=notes[:20_000], patch=patch,
        tokens=tokens, created_at=utcnow(),
    ))
    return number


def last_review(conn: Connection, run_id: str, phase_id: str) -> Row[Any] | None:
    """A phase's latest Auditor call, if any."""
    return conn.execute(
        select(_REVIEWS).where(_REVIEWS.c.run_id == run_id, _REVIEWS.c.phase_id == phase_id)
        .order_by(_REVIEWS.c.number.desc()).limit(1)
    ).one_or_none()


def list_reviews(conn: Connection, run_id: str) -> Sequence[Row[Any]]:
    """A run's Auditor calls in order."""
    return conn.execute(
        select(_REVIEWS).where(_REVIEWS.c.run_id == run_id).order_by(_REVIEWS.c.id)
    ).all()


def set_gate_outcome(
    conn: Connection, run_id: str, phase_id: str, number: int, refusals: Sequence[Refusal]
) -> None:
    """Mark an attempt `passed` or `refused` with the rules it broke."""
    conn.execute(
        update(_ATTEMPTS)
        .where(_ATTEMPTS.c.run_id == run_id, _ATTEMPTS.c.phase_id == phase_id,
               _ATTEMPTS.c.number == number)
        .values(gate_status="refused" if refusals else "passed",
                refusals=[{"path": r.path, "rule": r.rule, "detail": r.detail}
                          for r in refusals])
    )


def get_attempt(conn: Connection, run_id: str, phase_id: str, number: int) -> Row[Any]:
    """One attempt, or NotFound."""
    row = conn.execute(
        select(_ATTEMPTS).where(_ATTEMPTS.c.run_id == run_id, _ATTEMPTS.c.phase_id == phase_id,
                                _ATTEMPTS.c.number == number)
    ).one_or_none()
    if row is None:
        raise NotFound("attempt", f"{run_id}/{phase_id}/{number}")
    return row


def list_attempts(conn: Connection, run_id: str) -> Sequence[Row[Any]]:
    """A run's attempts without their diffs, in order."""
    cols = [c for c in _ATTEMPTS.c if c.name != "diff"]
    return conn.execute(
        select(*cols).where(_ATTEMPTS.c.run_id == run_id)
        .order_by(_ATTEMPTS.c.phase_id, _ATTEMPTS.c.number)
    ).all()


def record_snapshot(
    conn: Connection, run_id: str, phase_id: str, number: int, commit: str, tag: str
) -> None:
    """Record a phase's snapshot once; a repeat with the same commit changes nothing."""
    existing = get_snapshot(conn, run_id, phase_id)
    if existing is not None:
        if existing.commit != commit:
            raise Conflict(f"phase {phase_id!r} already has snapshot {existing.commit[:12]}")
        return
    conn.execute(insert(_SNAPSHOTS).values(
        run_id=run_id, phase_id=phase_id, attempt_number=number, commit=commit, tag=tag,
        created_at=utcnow(),
    ))


def get_snapshot(conn: Connection, run_id: str, phase_id: str) -> Row[Any] | None:
    """A phase's snapshot, if it has one."""
    return conn.execute(
        select(_SNAPSHOTS).where(_SNAPSHOTS.c.run_id == run_id,
                                 _SNAPSHOTS.c.phase_id == phase_id)
    ).one_or_none()


def list_snapshots(conn: Connection, run_id: str) -> Sequence[Row[Any]]:
    """A run's snapshots in the order they were made."""
    return conn.execute(
        select(_SNAPSHOTS).where(_SNAPSHOTS.c.run_id == run_id).order_by(_SNAPSHOTS.c.id)
    ).all()


def record_command_runs(
    conn: Connection, run_id: str, phase_id: str, number: int, kind: str,
    results: Sequence[tuple[int, CommandResult]],
) -> None:
    """Keep what each command did: exit, time, log path and a bounded output tail."""
    if not results:
        return
    now = utcnow()
    conn.execute(insert(_COMMAND_RUNS), [{
        "run_id": run_id, "phase_id": phase_id, "attempt_number": number, "kind": kind,
        "ci_attempt": ci_attempt, "command": r.command[:4000], "exit_code": r.exit_code,
        "timed_out": r.timed_out, "seconds": r.seconds, "log_path": str(r.log_path),
        "output_tail": r.tail, "output_bytes": r.output_bytes,
        "log_truncated": r.log_truncated, "created_at": now,
    } for ci_attempt, r in results])


def last_attempt(conn: Connection, run_id: str, phase_id: str) -> Row[Any] | None:
    """A phase's most recent stored attempt (with its diff), if any."""
    return conn.execute(
        select(_ATTEMPTS).where(_ATTEMPTS.c.run_id == run_id, _ATTEMPTS.c.phase_id == phase_id)
        .order_by(_ATTEMPTS.c.number.desc()).limit(1)
    ).one_or_none()


def command_runs_of(conn: Connection, run_id: str, phase_id: str, number: int
                    ) -> Sequence[Row[Any]]:
    """The commands run for one attempt, in order."""
    return conn.execute(
        select(_COMMAND_RUNS).where(_COMMAND_RUNS.c.run_id == run_id,
                                    _COMMAND_RUNS.c.phase_id == phase_id,
                                    _COMMAND_RUNS.c.attempt_number == number)
        .order_by(_COMMAND_RUNS.c.id)
    ).all()
