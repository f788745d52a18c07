"""How a phase's move rolls its tier and its run forward.

A run works on one phase at a time (plan order is the engine's business; the rule here
is that a phase may start only while no other phase of the run is active). A tier's
state is a function of its phases' states. The run follows the active phase through
the pipeline states (PHASE_EXECUTION, GATE, CI_RUNNING, SNAPSHOT_CREATED) and ends when
every phase is terminal: DONE_SUCCESS when no tier failed, DONE_FAILED_BUILD_FAILURE
otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from autopack.domain.errors import Conflict
from autopack.domain.states import PhaseState, RunState, TierState

ACTIVE_PHASE_STATES = frozenset({PhaseState.EXECUTING, PhaseState.GATE, PhaseState.CI_RUNNING})
_STARTED = ACTIVE_PHASE_STATES | {PhaseState.COMPLETE}
_RUN_STEP_FOR_PHASE = {
    PhaseState.EXECUTING: RunState.PHASE_EXECUTION,
    PhaseState.GATE: RunState.GATE,
    PhaseState.CI_RUNNING: RunState.CI_RUNNING,
    PhaseState.COMPLETE: RunState.SNAPSHOT_CREATED,
}


def check_one_active_phase(
    phase_id: str, current: PhaseState, target: PhaseState, states: Mapping[str, PhaseState]
) -> None:
    """Refuse to start `phase_id` while another phase of the run is active."""
    if current is not PhaseState.QUEUED or target not in ACTIVE_PHASE_STATES:
        return
    busy = sorted(pid for pid, s in states.items() if pid != phase_id and s in ACTIVE_PHASE_STATES)
    if busy:
        raise Conflict(
            f"phase {phase_id!r} cannot start: phase {busy[0]!r} is "
            f"{states[busy[0]].value}; a run works on one phase at a time"
        )


def tier_state_for(phase_states: Iterable[PhaseState]) -> TierState:
    """The state a tier holds given the states of its phases."""
    states = list(phase_states)
    if any(s is PhaseState.FAILED for s in states):
        return TierState.FAILED
    if states and all(s is PhaseState.SKIPPED for s in states):
        return TierState.SKIPPED
    if states and all(s in (PhaseState.COMPLETE, PhaseState.SKIPPED) for s in states):
        return TierState.COMPLETE
    if any(s in _STARTED for s in states):
        return TierState.IN_PROGRESS
    return TierState.PENDING


def run_steps_for(
    current: RunState,
    moved_to: PhaseState,
    all_phase_states: Iterable[PhaseState],
    tier_states: Iterable[TierState],
) -> list[RunState]:
    """The run states to pass through, in order, after one phase moved to `moved_to`."""
    steps: list[RunState] = []
    step = _RUN_STEP_FOR_PHASE.get(moved_to)
    if step is not None and step is not current:
        steps.append(step)
    if all(s.is_terminal for s in all_phase_states):
        failed = any(t is TierState.FAILED for t in tier_states)
        steps.append(RunState.DONE_FAILED_BUILD_FAILURE if failed else RunState.DONE_SUCCESS)
    return steps
