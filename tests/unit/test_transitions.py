"""The transition tables, exhaustively."""

from __future__ import annotations

import itertools

import pytest

from autopack.domain.errors import IllegalTransition
from autopack.domain.states import PhaseState, RunState, TierState
from autopack.domain.transitions import (
    PHASE_TRANSITIONS,
    RUN_TRANSITIONS,
    TIER_TRANSITIONS,
    allowed_moves,
    transition,
)

P, T, R = PhaseState, TierState, RunState
FAILED_RUN = {s for s in R if s.is_failure}

EXPECTED_PHASE = {
    P.QUEUED: {P.EXECUTING, P.SKIPPED, P.FAILED},
    P.EXECUTING: {P.GATE, P.FAILED},
    P.GATE: {P.CI_RUNNING, P.EXECUTING, P.FAILED},
    P.CI_RUNNING: {P.COMPLETE, P.EXECUTING, P.FAILED},
    P.COMPLETE: set(),
    P.FAILED: set(),
    P.SKIPPED: set(),
}
EXPECTED_TIER = {
    T.PENDING: {T.IN_PROGRESS, T.FAILED, T.SKIPPED},
    T.IN_PROGRESS: {T.COMPLETE, T.FAILED},
    T.COMPLETE: set(),
    T.FAILED: set(),
    T.SKIPPED: set(),
}
EXPECTED_RUN = {
    R.PLAN_BOOTSTRAP: {R.RUN_CREATED} | FAILED_RUN,
    R.RUN_CREATED: {R.PHASE_QUEUEING} | FAILED_RUN,
    R.PHASE_QUEUEING: {R.PHASE_EXECUTION, R.DONE_SUCCESS} | FAILED_RUN,
    R.PHASE_EXECUTION: {R.GATE} | FAILED_RUN,
    R.GATE: {R.CI_RUNNING, R.PHASE_EXECUTION} | FAILED_RUN,
    R.CI_RUNNING: {R.SNAPSHOT_CREATED, R.PHASE_EXECUTION} | FAILED_RUN,
    R.SNAPSHOT_CREATED: {R.PHASE_EXECUTION, R.DONE_SUCCESS} | FAILED_RUN,
    **{s: set() for s in R if s.is_terminal},
}


def test_state_names_are_the_specs() -> None:
    assert [s.value for s in R][:8] == [
        "PLAN_BOOTSTRAP", "RUN_CREATED", "PHASE_QUEUEING", "PHASE_EXECUTION", "GATE",
        "CI_RUNNING", "SNAPSHOT_CREATED", "DONE_SUCCESS"]
    assert {"DONE_FAILED_BUDGET_EXHAUSTED", "DONE_FAILED_POLICY_VIOLATION",
            "DONE_FAILED_REQUIRES_HUMAN_REVIEW", "DONE_FAILED_ENVIRONMENT"} <= {s.value for s in R}
    assert [s.value for s in P] == ["QUEUED", "EXECUTING", "GATE", "CI_RUNNING", "COMPLETE",
                                    "FAILED", "SKIPPED"]
    assert [s.value for s in T] == ["PENDING", "IN_PROGRESS", "COMPLETE", "FAILED", "SKIPPED"]


@pytest.mark.parametrize(("table", "expected"), [
    (PHASE_TRANSITIONS, EXPECTED_PHASE), (TIER_TRANSITIONS, EXPECTED_TIER),
    (RUN_TRANSITIONS, EXPECTED_RUN),
])
def test_tables_are_exactly_as_specified(table: dict, expected: dict) -> None:
    assert {k: set(v) for k, v in table.items()} == expected


@pytest.mark.parametrize("enum", [PhaseState, TierState, RunState])
def test_every_pair_is_legal_exactly_when_the_table_says(enum: type) -> None:
    for current, target in itertools.product(enum, enum):
        if target in allowed_moves(current):
            assert transition("x", "id", current, target) is target
        else:
            with pytest.raises(IllegalTransition) as caught:
                transition("x", "id", current, target)
            assert caught.value.allowed == sorted(s.value for s in allowed_moves(current))


def test_terminal_states_have_no_moves() -> None:
    for enum in (PhaseState, TierState, RunState):
        for state in enum:
            assert (not allowed_moves(state)) == state.is_terminal


def test_illegal_transition_names_the_allowed_moves() -> None:
    with pytest.raises(IllegalTransition, match="allowed from QUEUED: EXECUTING, FAILED, SKIPPED"):
        transition("phase", "P1", P.QUEUED, P.COMPLETE)
    with pytest.raises(IllegalTransition, match=r"none \(terminal state\)"):
        transition("phase", "P1", P.FAILED, P.COMPLETE)


def test_mixing_state_kinds_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        transition("x", "id", P.QUEUED, T.PENDING)  # type: ignore[type-var]
