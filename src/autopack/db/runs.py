"""Run services: create a run, read it, move its phases. All SQL for runs lives here.

Every state change is guarded (the UPDATE names the state it moves from, and no row
back means someone else moved it first) and commits with its event row in the caller's
unit of work. Moves on one run are serialised by locking the run row first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import BigInteger, Connection, Row, Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from autopack.db import issues
from autopack.db.models import Base, utcnow
from autopack.db.run_lock import lock_active_run
from autopack.domain.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from autopack.domain.rollup import check_one_active_phase, run_steps_for, tier_state_for
from autopack.domain.states import PhaseState, RunState, TierState
from autopack.domain.transitions import transition
from autopack.issues.rules import AgingPolicy, DebtStatus, IssueSource, IssueState, Severity
from autopack.plan.spec import RunSpec

_RUNS, _TIERS, _PHASES, _EVENTS, _STRATEGIES, _INPUTS = (
    Base.metadata.tables[t]
    for t in ("runs", "tiers", "phases", "events", "strategies", "run_inputs")
)
CREATION_STEPS = (RunState.PLAN_BOOTSTRAP, RunState.RUN_CREATED, RunState.PHASE_QUEUEING)

# The statements of the hot paths (reading a run, moving a phase), built once: building
# a statement and its cache key costs more than executing it.
_RUN_BY_ID = select(_RUNS).where(_RUNS.c.run_id == bindparam("run_id"))
_TIERS_OF_RUN = (select(_TIERS).where(_TIERS.c.run_id == bindparam("run_id"))
                 .order_by(_TIERS.c.tier_index))
_PHASES_OF_RUN = (select(_PHASES).where(_PHASES.c.run_id == bindparam("run_id"))
                  .order_by(_PHASES.c.phase_index))
_RUN_VERSION = select(_RUNS.c.version).where(_RUNS.c.run_id == bindparam("run_id"))
_PHASE_STATES = (select(_PHASES.c.id, _PHASES.c.phase_id, _PHASES.c.tier_id,
                        _PHASES.c.phase_index, _PHASES.c.state, _PHASES.c.tokens_used,
                        _PHASES.c.minor_issues_count, _PHASES.c.major_issues_count)
                 .where(_PHASES.c.run_id == bindparam("run_id")))
_DRIVEN = select(_INPUTS.c.run_id).where(_INPUTS.c.run_id == bindparam("run_id"))
_TIER_STATES = (select(_TIERS.c.tier_id, _TIERS.c.state)
                .where(_TIERS.c.run_id == bindparam("run_id")))


def _or_keep(name: str, column: Any) -> Any:
    """SET value: the bound `name`, or the column's own value when it is bound as NULL,
    so one statement serves every combination of reported counters."""
    return func.coalesce(bindparam(name, type_=column.type), column)


_MOVE_PHASE = (
    update(_PHASES)
    .where(_PHASES.c.id == bindparam("b_pk"), _PHASES.c.state == bindparam("b_from_state"))
    .values(state=bindparam("b_to_state"), updated_at=bindparam("b_now"),
            builder_attempts=_or_keep("b_builder_attempts", _PHASES.c.builder_attempts),
            tokens_used=_or_keep("b_tokens_used", _PHASES.c.tokens_used))
)
_MOVE_TIER = (
    update(_TIERS)
    .where(_TIERS.c.run_id == bindparam("b_run_id"), _TIERS.c.tier_id == bindparam("b_tier_id"),
           _TIERS.c.state == bindparam("b_from_state"))
    .values(state=bindparam("b_to_state"), updated_at=bindparam("b_now"),
            tokens_used=_TIERS.c.tokens_used + bindparam("b_token_delta", type_=BigInteger))
)
_MOVE_RUN = (
    update(_RUNS)
    .where(_RUNS.c.run_id == bindparam("b_run_id"), _RUNS.c.state == bindparam("b_from_state"))
    .values(state=bindparam("b_to_state"), updated_at=bindparam("b_now"),
            version=_RUNS.c.version + 1,
            tokens_used=_RUNS.c.tokens_used + bindparam("b_token_delta", type_=BigInteger),
            completed_at=_or_keep("b_completed_at", _RUNS.c.completed_at),
            failure_reason=_or_keep("b_failure_reason", _RUNS.c.failure_reason))
)
_ADD_EVENTS = insert(_EVENTS)


@dataclass(frozen=True)
class RepoBinding:
    """The repository a run works on and where its integration branch starts."""

    path: str
    main_branch: str
    base_commit: str


@dataclass(frozen=True)
class PhaseStatusUpdate:
    """A requested phase move plus the counters reported with it (absolute values)."""

    state: PhaseState
    builder_attempts: int | None = None
    tokens_used: int | None = None
    minor_issues_count: int | None = None
    major_issues_count: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RunView:
    """A run as one consistent read: its row, its tiers' rows and its phases' rows.

    Rows are immutable and detached from any conn; their columns are attributes
    (`view.run.state`, `view.phases[0].phase_id`).
    """

    run: Row[Any]
    tiers: tuple[Row[Any], ...]
    phases: tuple[Row[Any], ...]

    def phase(self, phase_id: str) -> Row[Any]:
        """One phase's row."""
        return self._phases_by_id[phase_id]

    def tier(self, tier_id: str) -> Row[Any]:
        """One tier's row."""
        return self._tiers_by_id[tier_id]

    @cached_property
    def _phases_by_id(self) -> dict[str, Row[Any]]:
        return {p.phase_id: p for p in self.phases}

    @cached_property
    def _tiers_by_id(self) -> dict[str, Row[Any]]:
        return {t.tier_id: t for t in self.tiers}


@dataclass(frozen=True)
class PhaseStatusResult:
    """What a phase move changed."""

    run_id: str
    phase_id: str
    tier_id: str
    phase_state: PhaseState
    tier_state: TierState
    run_state: RunState
    transitioned: bool


def _event(
    run_id: str, entity: str, entity_id: str, old: str | None, new: str, actor: str,
    at: datetime, reason: str | None = None,
) -> dict[str, object]:
    return {
        "run_id": run_id, "entity": entity, "entity_id": entity_id, "from_state": old,
        "to_state": new, "at": at, "reason": reason, "actor": actor,
    }


def create_run(
    conn: Connection, spec: RunSpec, aging: AgingPolicy, actor: str,
    compile_strategy: Callable[[Sequence[tuple[Any, list[str]]]], dict[str, Any]],
    strategy_json: Callable[[dict[str, Any]], str], repo: RepoBinding | None = None,
    inputs: str | None = None,
) -> dict[str, Any]:
    """Insert a run, its tiers and phases (queued) as its strategy compiled them, the
    frozen strategy, and the events of its creation. Returns the strategy.

    The run is numbered within its project and the project's backlog is aged by it
    before the strategy is compiled, so aged issues shape it.
    """
    fields = spec.run
    if conn.execute(select(_RUNS.c.run_id).where(_RUNS.c.run_id == fields.run_id)).first():
        raise Conflict(f"run {fields.run_id!r} already exists")
    now = utcnow()
    seq = issues.next_project_run(conn, fields.project_id, now)
    issues.age_backlog(conn, fields.project_id, seq, aging)
    strategy = compile_strategy(issues.open_backlog_with_evidence(conn, fields.project_id))
    caps = strategy["run"]
    if len(strategy["phases"]) > caps["max_phases"]:
        parts = ", ".join(f"{p['run_id']} ({len(p['phase_ids'])} phases)"
                          for p in strategy["split"])
        raise InvalidInput(
            "phases", f"{len(strategy['phases'])} phases exceed max_phases="
            f"{caps['max_phases']}; split the plan into several runs by tier: {parts}"
        )
    if strategy["run_scope"] == "single_tier" and len(spec.tiers) > 1:
        parts = ", ".join(p["run_id"] for p in strategy["split"])
        raise InvalidInput(
            "tiers", f"a single_tier run handles one tier, not {len(spec.tiers)}; start "
            f"each tier as a run of its own: {parts}")
    try:
        conn.execute(insert(_RUNS).values(
            run_id=fields.run_id, project_id=fields.project_id, project_run_seq=seq,
            debt_status=DebtStatus.CLEAN.value, state=RunState.PHASE_QUEUEING.value,
            safety_profile=strategy["safety_profile"], run_scope=strategy["run_scope"],
            adoption_stage=strategy["adoption_stage"],
            token_cap=caps["token_cap"], max_phases=caps["max_phases"],
            max_duration_minutes=caps["max_duration_minutes"],
            max_minor_issues_total=caps["max_minor_issues_total"],
            tokens_used=0, ci_runs_used=0, minor_issues_count=0, major_issues_count=0,
            created_at=now, updated_at=now, version=1,
            repo_path=repo.path if repo else None,
            main_branch=repo.main_branch if repo else None,
            base_commit=repo.base_commit if repo else None,
        ))
    except IntegrityError as exc:
        raise Conflict(f"run {fields.run_id!r} already exists") from exc
    if inputs is not None:
        conn.execute(insert(_INPUTS).values(run_id=fields.run_id, document=inputs))
    document = strategy_json(strategy)
    conn.execute(insert(_STRATEGIES).values(
        run_id=fields.run_id, version=strategy["version"], document=document,
        sha256=hashlib.sha256(document.encode()).hexdigest(), created_at=now,
    ))
    conn.execute(insert(_TIERS), [
        {
            "run_id": fields.run_id, "tier_id": t["tier_id"], "tier_index": t["tier_index"],
            "name": t["name"], "description": t["description"],
            "state": TierState.PENDING.value, "token_cap": t["token_cap"],
            "ci_run_cap": t["ci_run_cap"],
            "max_minor_issues_tolerated": t["max_minor_issues_tolerated"],
            "max_major_issues_tolerated": t["max_major_issues_tolerated"],
            "tokens_used": 0, "ci_runs_used": 0, "minor_issues_count": 0,
            "major_issues_count": 0, "updated_at": now,
        }
        for t in strategy["tiers"]
    ])
    conn.execute(insert(_PHASES), [
        {
            "run_id": fields.run_id, "tier_id": p["tier_id"], "phase_id": p["phase_id"],
            "phase_index": p["phase_index"], "name": p["name"], "description": p["description"],
            "task_category": p["task_category"], "complexity": p["complexity"],
            "builder_mode": p["builder_mode"],
            "state": PhaseState.QUEUED.value, "builder_attempts": 0, "tokens_used": 0,
            "minor_issues_count": 0, "major_issues_count": 0,
            "issue_state": IssueState.NO_ISSUES.value,
            "max_builder_attempts": p["max_builder_attempts"],
            "max_auditor_attempts": p["max_auditor_attempts"],
            "incident_token_cap": p["incident_token_cap"], "updated_at": now,
            "scope": p["allowed_scope"],
        }
        for p in strategy["phases"]
    ])
    events = [
        _event(fields.run_id, "run", fields.run_id, old.value if old else None, new.value,
               actor, now, "strategy compiled and frozen" if new is RunState.RUN_CREATED
               else None)
        for old, new in zip((None, *CREATION_STEPS[:-1]), CREATION_STEPS, strict=True)
    ]
    events += [_event(fields.run_id, "tier", t["tier_id"], None, TierState.PENDING.value,
                      actor, now) for t in strategy["tiers"]]
    events += [_event(fields.run_id, "phase", p["phase_id"], None, PhaseState.QUEUED.value,
                      actor, now) for p in strategy["phases"]]
    conn.execute(insert(_EVENTS), events)
    return strategy


def get_inputs(conn: Connection, run_id: str) -> str | None:
    """What the run was started with (JSON), or None for a run not started by the engine."""
    found: str | None = conn.execute(
        select(_INPUTS.c.document).where(_INPUTS.c.run_id == run_id)
    ).scalar_one_or_none()
    return found


def get_strategy(conn: Connection, run_id: str) -> Row[Any]:
    """A run's frozen strategy row, or NotFound."""
    row = conn.execute(
        select(_STRATEGIES).where(_STRATEGIES.c.run_id == run_id)
    ).one_or_none()
    if row is None:
        raise NotFound("strategy of run", run_id)
    return row


def get_run(conn: Connection, run_id: str) -> RunView:
    """The run with its tiers and phases, or NotFound."""
    key = {"run_id": run_id}
    run = conn.execute(_RUN_BY_ID, key).one_or_none()
    if run is None:
        raise NotFound("run", run_id)
    tiers = conn.execute(_TIERS_OF_RUN, key).all()
    phases = conn.execute(_PHASES_OF_RUN, key).all()
    return RunView(run, tuple(tiers), tuple(phases))


def run_version(conn: Connection, run_id: str) -> int:
    """The run's version, bumped by every change to it; NotFound when there is no run."""
    version = conn.execute(_RUN_VERSION, {"run_id": run_id}).scalar_one_or_none()
    if version is None:
        raise NotFound("run", run_id)
    return int(version)


def list_runs(conn: Connection, limit: int = 100) -> Sequence[Row[Any]]:
    """The newest runs first."""
    return conn.execute(
        select(_RUNS).order_by(_RUNS.c.created_at.desc(), _RUNS.c.run_id).limit(limit)
    ).all()


def list_events(conn: Connection, run_id: str) -> Sequence[Row[Any]]:
    """A run's event log in the order it was written."""
    return conn.execute(
        select(_EVENTS).where(_EVENTS.c.run_id == run_id).order_by(_EVENTS.c.id)
    ).all()


def update_phase_status(
    conn: Connection, run_id: str, phase_id: str, change: PhaseStatusUpdate, actor: str,
    external: bool = False,
) -> PhaseStatusResult:
    """Move one phase (or report counters in its current state) and roll tier and run.

    An `external` change (not the engine's) is refused on a run the engine drives."""
    run = lock_active_run(conn, run_id, f"(phase {phase_id} -> {change.state.value})")
    if external and conn.execute(_DRIVEN, {"run_id": run_id}).first() is not None:
        raise Conflict(f"run {run_id!r} is driven by Autopack's engine (`autopack run`, or "
                       "started with execute): its phases move by themselves")
    run_state = RunState(run.state)
    phases = conn.execute(_PHASE_STATES, {"run_id": run_id}).all()
    phase = next((p for p in phases if p.phase_id == phase_id), None)
    if phase is None:
        raise NotFound("phase", phase_id)
    _check_reported_counts(phase, change)
    current = PhaseState(phase.state)
    moving = change.state is not current
    states = {p.phase_id: PhaseState(p.state) for p in phases}
    if moving:
        transition("phase", phase_id, current, change.state)
        check_one_active_phase(phase_id, current, change.state, states)
    elif current.is_terminal:
        raise IllegalTransition("phase", phase_id, current.value, change.state.value, ())
    now = utcnow()
    _expect_one(conn.execute(_MOVE_PHASE, {
        "b_pk": phase.id, "b_from_state": current.value, "b_to_state": change.state.value,
        "b_now": now, "b_builder_attempts": change.builder_attempts,
        "b_tokens_used": change.tokens_used,
    }), f"phase (no longer {current.value})")
    token_delta = 0 if change.tokens_used is None else change.tokens_used - phase.tokens_used
    states[phase_id] = change.state
    events: list[dict[str, object]] = []
    if moving:
        events.append(_event(run_id, "phase", phase_id, current.value, change.state.value,
                             actor, now, change.reason))
    tiers = _tier_states(conn, run_id)
    tier_state = _roll_tier(conn, run_id, phase.tier_id, tiers[phase.tier_id],
                            [states[p.phase_id] for p in phases if p.tier_id == phase.tier_id],
                            token_delta, actor, now, events)
    tiers[phase.tier_id] = tier_state
    recounted = _record_reported_counts(conn, run, phase, change, now)
    # the engine checks its budgets before each step; a change reported from outside is
    # checked here, before it could end the run in success (SPEC §9)
    over = _over_run_budget(conn, run, token_delta, recounted, now) if external else None
    steps = run_steps_for(run_state, change.state, states.values(),
                          tiers.values()) if moving and over is None else []
    new_run_state = run_state
    for step in steps:
        transition("run", run_id, new_run_state, step)
        events.append(_event(run_id, "run", run_id, new_run_state.value, step.value, actor, now,
                             f"phase {phase_id} {change.state.value}"))
        new_run_state = step
    ended = new_run_state is not run_state and new_run_state.is_terminal
    _expect_one(conn.execute(_MOVE_RUN, {
        "b_run_id": run_id, "b_from_state": run_state.value, "b_to_state": new_run_state.value,
        "b_now": now, "b_token_delta": token_delta, "b_completed_at": now if ended else None,
        "b_failure_reason": new_run_state.value.removeprefix("DONE_FAILED_")
        if ended and new_run_state.is_failure else None,
    }), f"run {run_id!r}")
    if events:
        conn.execute(_ADD_EVENTS, events)
    if over is not None:
        finish_failed(conn, run_id, "BUDGET_EXHAUSTED", over, actor)
        phase_state = PhaseState(conn.execute(_PHASE_STATES, {"run_id": run_id}).all()[
            [p.phase_id for p in phases].index(phase_id)].state)
        return PhaseStatusResult(run_id, phase_id, phase.tier_id, phase_state,
                                 _tier_states(conn, run_id)[phase.tier_id],
                                 RunState.DONE_FAILED_BUDGET_EXHAUSTED, moving)
    return PhaseStatusResult(run_id, phase_id, phase.tier_id, change.state, tier_state,
                             new_run_state, moving)


def _over_run_budget(conn: Connection, run: Any, token_delta: int, recounted: bool,
                     now: datetime) -> str | None:
    """Why the run is past its token cap, minor-issue total or duration once a change
    spending `token_delta` tokens is applied (its issues are: `recounted` when it added
    some), or None."""
    tokens = run.tokens_used + token_delta
    minor = run.minor_issues_count if not recounted else conn.execute(
        select(_RUNS.c.minor_issues_count).where(_RUNS.c.run_id == run.run_id)).scalar_one()
    minutes = (now - run.created_at).total_seconds() / 60
    if tokens > run.token_cap:
        return f"run tokens {tokens} exceed the cap {run.token_cap}"
    if minor > run.max_minor_issues_total:
        return (f"{minor} minor issues exceed max_minor_issues_total "
                f"{run.max_minor_issues_total}")
    if minutes > run.max_duration_minutes:
        return f"{minutes:.2f} minutes exceed max_duration_minutes {run.max_duration_minutes}"
    return None


def _expect_one(result: Any, what: str) -> None:
    """A guarded UPDATE changed no row: someone moved it first."""
    if result.rowcount != 1:
        raise Conflict(f"{what} changed concurrently")


def finish_failed(conn: Connection, run_id: str, reason: str, detail: str, actor: str) -> None:
    """End a run as `DONE_FAILED_{reason}`: active phases FAILED, queued ones SKIPPED,
    tiers rolled, each move an event."""
    run = lock_active_run(conn, run_id, f"DONE_FAILED_{reason}")
    target = RunState(f"DONE_FAILED_{reason}")
    now = utcnow()
    phases = conn.execute(
        select(_PHASES.c.id, _PHASES.c.phase_id, _PHASES.c.tier_id, _PHASES.c.state)
        .where(_PHASES.c.run_id == run_id).order_by(_PHASES.c.phase_index)
    ).all()
    events: list[dict[str, object]] = []
    states: dict[str, PhaseState] = {}
    for phase in phases:
        current = PhaseState(phase.state)
        new = current
        if not current.is_terminal:
            new = PhaseState.SKIPPED if current is PhaseState.QUEUED else PhaseState.FAILED
            transition("phase", phase.phase_id, current, new)
            _guarded_update(conn, _PHASES, (_PHASES.c.id == phase.id,
                                               _PHASES.c.state == current.value),
                            {"state": new.value, "updated_at": now},
                            f"phase {phase.phase_id!r}")
            events.append(_event(run_id, "phase", phase.phase_id, current.value, new.value,
                                 actor, now, detail[:2000]))
        states[phase.phase_id] = new
    tiers = _tier_states(conn, run_id)
    for tier_id in dict.fromkeys(p.tier_id for p in phases):
        _roll_tier(conn, run_id, tier_id, tiers[tier_id],
                   [states[p.phase_id] for p in phases if p.tier_id == tier_id], 0, actor, now,
                   events)
    current_run = RunState(run.state)
    transition("run", run_id, current_run, target)
    events.append(_event(run_id, "run", run_id, current_run.value, target.value, actor, now,
                         detail[:2000]))
    _guarded_update(conn, _RUNS, (_RUNS.c.run_id == run_id,
                                     _RUNS.c.state == current_run.value), {
        "state": target.value, "failure_reason": reason, "completed_at": now,
        "updated_at": now, "version": _RUNS.c.version + 1,
    }, f"run {run_id!r}")
    conn.execute(insert(_EVENTS), events)


def add_ci_runs(conn: Connection, run_id: str, tier_id: str, count: int) -> None:
    """Count `count` CI executions against a tier and its run."""
    now = utcnow()
    conn.execute(update(_TIERS).where(_TIERS.c.run_id == run_id, _TIERS.c.tier_id == tier_id)
                    .values(ci_runs_used=_TIERS.c.ci_runs_used + count, updated_at=now))
    conn.execute(update(_RUNS).where(_RUNS.c.run_id == run_id)
                    .values(ci_runs_used=_RUNS.c.ci_runs_used + count, updated_at=now,
                            version=_RUNS.c.version + 1))


def record_promotion(
    conn: Connection, run_id: str, commit: str, action: str, actor: str
) -> None:
    """Record that `actor` promoted the run: main is now at `commit`.

    The run's `updated_at` stays as the run ended: its files, committed to the branch
    main now holds, are regenerated byte for byte (`promoted_at` says when)."""
    run = conn.execute(
        select(_RUNS.c.state).where(_RUNS.c.run_id == run_id).with_for_update()
    ).one_or_none()
    if run is None:
        raise NotFound("run", run_id)
    now = utcnow()
    _guarded_update(conn, _RUNS, (_RUNS.c.run_id == run_id, _RUNS.c.state == run.state), {
        "promoted_commit": commit, "promoted_at": now, "promoted_by": actor[:64],
        "version": _RUNS.c.version + 1,
    }, f"run {run_id!r}")
    conn.execute(insert(_EVENTS), [_event(run_id, "run", run_id, run.state, run.state, actor,
                                             now, f"promoted to main at {commit} ({action})")])


MAX_UNKEYED_ISSUES = 100
"""Placeholder issues one update_status may add per severity: each is recorded like a
keyed issue (rows, backlog, files), so an unbounded count would hold the writer for
minutes."""


def _check_reported_counts(phase: Any, change: PhaseStatusUpdate) -> None:
    for field, have, wanted in (
        ("minor_issues_count", phase.minor_issues_count, change.minor_issues_count),
        ("major_issues_count", phase.major_issues_count, change.major_issues_count),
    ):
        if wanted is not None and wanted - have > MAX_UNKEYED_ISSUES:
            raise InvalidInput(field, (
                f"{wanted} would add {wanted - have} issues without keys to phase "
                f"{phase.phase_id} (it has {have}); at most {MAX_UNKEYED_ISSUES} per "
                "request: record issues by key with record_issue"))


def _record_reported_counts(
    conn: Connection, run: Any, phase: Any, change: PhaseStatusUpdate, now: datetime
) -> bool:
    """Issue counts reported without keys become placeholder issues, so none is dropped;
    True when some were recorded.

    Counts stay counts of distinct keys: placeholders only top the phase up to the
    reported number (`unspecified_minor__{phase_id}__{n}`).
    """
    have = {Severity.MINOR: phase.minor_issues_count, Severity.MAJOR: phase.major_issues_count}
    wanted = {Severity.MINOR: change.minor_issues_count or 0,
              Severity.MAJOR: change.major_issues_count or 0}
    placeholders = [
        issues.IssueReport(f"unspecified_{severity.value}__{phase.phase_id}__{n}", severity,
                           IssueSource.BUILDER_SELF_DOUBT, "unspecified",
                           description="counted in update_status without an issue key")
        for severity in Severity for n in range(have[severity] + 1, wanted[severity] + 1)
    ]
    # Backlog rows are locked in key order everywhere, so transactions cannot deadlock.
    policy = issues.issue_policy(conn, run.run_id) if placeholders else None
    for report in sorted(placeholders, key=lambda r: r.issue_key):
        issues.record_in_locked_run(conn, run, phase, report, now, policy)
    if placeholders:
        issues.refresh_counts(conn, run, now)
    return bool(placeholders)


def _guarded_update(
    conn: Connection, table: Table, where: tuple[Any, ...], values: dict[str, Any], what: str
) -> None:
    """UPDATE … WHERE (key and expected state); no row back means someone moved it first."""
    _expect_one(conn.execute(update(table).where(*where).values(**values)), what)


def _tier_states(conn: Connection, run_id: str) -> dict[str, TierState]:
    return {t.tier_id: TierState(t.state) for t in conn.execute(_TIER_STATES, {"run_id": run_id})}


def _roll_tier(
    conn: Connection, run_id: str, tier_id: str, current: TierState,
    phase_states: list[PhaseState], token_delta: int, actor: str, now: datetime,
    events: list[dict[str, object]],
) -> TierState:
    """Move a tier (from `current`) to the state its phases give it and add `token_delta`
    to its tokens; the move's event is appended to `events`."""
    target = tier_state_for(phase_states)
    if target is not current:
        transition("tier", tier_id, current, target)
        events.append(_event(run_id, "tier", tier_id, current.value, target.value, actor, now))
    if token_delta or target is not current:
        _expect_one(conn.execute(_MOVE_TIER, {
            "b_run_id": run_id, "b_tier_id": tier_id, "b_from_state": current.value,
            "b_to_state": target.value, "b_now": now, "b_token_delta": token_delta,
        }), f"tier {tier_id!r}")
    return target


