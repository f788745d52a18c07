"""The legal state moves, as data, and the one function that applies them."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from autopack.domain.errors import IllegalTransition
from autopack.domain.states import PhaseState, RunState, TierState

_FAILURES = frozenset(s for s in RunState if s.is_failure)

RUN_TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    RunState.PLAN_BOOTSTRAP: frozenset({RunState.RUN_CREATED}) | _FAILURES,
    RunState.RUN_CREATED: frozenset({RunState.PHASE_QUEUEING}) | _FAILURES,
    RunState.PHASE_QUEUEING: frozenset({RunState.PHASE_EXECUTION, RunState.DONE_SUCCESS})
    | _FAILURES,
    RunState.PHASE_EXECUTION: frozenset({RunState.GATE}) | _FAILURES,
    # GATE and CI_RUNNING go back to PHASE_EXECUTION when a red result is retried.
    RunState.GATE: frozenset({RunState.CI_RUNNING, RunState.PHASE_EXECUTION}) | _FAILURES,
    RunState.CI_RUNNING: frozenset({RunState.SNAPSHOT_CREATED, RunState.PHASE_EXECUTION})
    | _FAILURES,
    RunState.SNAPSHOT_CREATED: frozenset({RunState.PHASE_EXECUTION, RunState.DONE_SUCCESS})
    | _FAILURES,
    **{s: frozenset() for s in RunState if s.is_terminal},
}

TIER_TRANSITIONS: Mapping[TierState, frozenset[TierState]] = {
    TierState.PENDING: frozenset({TierState.IN_PROGRESS, TierState.FAILED, TierState.SKIPPED}),
    TierState.IN_PROGRESS: frozenset({TierState.COMPLETE, TierState.FAILED}),
    TierState.COMPLETE: frozenset(),
    TierState.FAILED: frozenset(),
    TierState.SKIPPED: frozenset(),
}

PHASE_TRANSITIONS: Mapping[PhaseState, frozenset[PhaseState]] = {
    PhaseState.QUEUED: frozenset({PhaseState.EXECUTING, PhaseState.SKIPPED, PhaseState.FAILED}),
    PhaseState.EXECUTING: frozenset({PhaseState.GATE, PhaseState.FAILED}),
    # A red gate or CI hands the phase back to the Builder for another attempt.
    PhaseState.GATE: frozenset({PhaseState.CI_RUNNING, PhaseState.EXECUTING, PhaseState.FAILED}),
    PhaseState.CI_RUNNING: frozenset(
        {PhaseState.COMPLETE, PhaseState.EXECUTING, PhaseState.FAILED}
    ),
    PhaseState.COMPLETE: frozenset(),
    PhaseState.FAILED: frozenset(),
    PhaseState.SKIPPED: frozenset(),
}

S = TypeVar("S", bound=StrEnum)

_TABLES: Mapping[type[StrEnum], Mapping[Any, frozenset[Any]]] = {
    RunState: RUN_TRANSITIONS,
    TierState: TIER_TRANSITIONS,
    PhaseState: PHASE_TRANSITIONS,
}


def allowed_moves(current: S) -> frozenset[S]:
    """The states `current` may move to."""
    moves: frozenset[S] = _TABLES[type(current)][current]
    return moves


def is_legal(current: S, target: S) -> bool:
    """True when the tables allow `current -> target`."""
    return target in allowed_moves(current)


def transition(entity: str, entity_id: str, current: S, target: S) -> S:
    """Return `target` if `current -> target` is legal, else raise IllegalTransition."""
    if type(current) is not type(target):
        raise TypeError(f"cannot move a {type(current).__name__} to a {type(target).__name__}")
    allowed = allowed_moves(current)
    if target not in allowed:
        raise IllegalTransition(entity, entity_id, current.value, target.value,
                                (s.value for s in allowed))
    return target


