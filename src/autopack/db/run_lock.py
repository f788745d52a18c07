"""Locking a run row before changing the run: the first step of every run write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select

from autopack.db.models import Base
from autopack.domain.errors import IllegalTransition, NotFound
from autopack.domain.states import RunState

_RUNS = Base.metadata.tables["runs"]
_LOCK_RUN = (
    select(_RUNS.c.run_id, _RUNS.c.state, _RUNS.c.project_id, _RUNS.c.project_run_seq,
           _RUNS.c.max_minor_issues_total, _RUNS.c.minor_issues_count,
           _RUNS.c.tokens_used, _RUNS.c.token_cap,
           _RUNS.c.created_at, _RUNS.c.max_duration_minutes)
    .where(_RUNS.c.run_id == bindparam("run_id")).with_for_update()
)


def lock_active_run(conn: Connection, run_id: str, attempted: str) -> Any:
    """The run row, locked until the unit of work ends; refuses a missing or terminal run.

    `attempted` names the change in the refusal, e.g. "(phase P1 -> GATE)".
    """
    run = conn.execute(_LOCK_RUN, {"run_id": run_id}).one_or_none()
    if run is None:
        raise NotFound("run", run_id)
    if RunState(run.state).is_terminal:
        raise IllegalTransition("run", run_id, run.state, attempted, ())
    return run
