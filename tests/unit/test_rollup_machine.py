"""Hypothesis state machine: no sequence of phase moves reaches a state the tables forbid."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from autopack.domain.errors import Conflict, IllegalTransition
from autopack.domain.rollup import (
    ACTIVE_PHASE_STATES,
    check_one_active_phase,
    run_steps_for,
    tier_state_for,
)
from autopack.domain.states import PhaseState, RunState, TierState
from autopack.domain.transitions import is_legal, transition


class RunModel(RuleBasedStateMachine):
    """A run of random shape driven by random (legal or illegal) phase moves."""

    @initialize(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4))
    def build(self, shape: list[int]) -> None:
        self.run = RunState.PHASE_QUEUEING
        self.tier_of: dict[str, str] = {}
        self.phases: dict[str, PhaseState] = {}
        for t, count in enumerate(shape):
            for i in range(count):
                pid = f"P{t}.{i}"
                self.tier_of[pid] = f"T{t}"
                self.phases[pid] = PhaseState.QUEUED
        self.tiers = {f"T{t}": TierState.PENDING for t in range(len(shape))}

    @rule(data=st.data(), target_state=st.sampled_from(list(PhaseState)))
    def move(self, data: st.DataObject, target_state: PhaseState) -> None:
        pid = data.draw(st.sampled_from(sorted(self.phases)))
        current = self.phases[pid]
        if self.run.is_terminal:
            return
        try:
            transition("phase", pid, current, target_state)
            check_one_active_phase(pid, current, target_state, self.phases)
        except (IllegalTransition, Conflict):
            assert self.phases[pid] is current  # a refused move changes nothing
            return
        self.phases[pid] = target_state
        tier = self.tier_of[pid]
        new_tier = tier_state_for(s for p, s in self.phases.items() if self.tier_of[p] == tier)
        if new_tier is not self.tiers[tier]:
            self.tiers[tier] = transition("tier", tier, self.tiers[tier], new_tier)
        for step in run_steps_for(self.run, target_state, self.phases.values(),
                                  self.tiers.values()):
            self.run = transition("run", "r", self.run, step)

    @invariant()
    def at_most_one_active_phase(self) -> None:
        assert sum(s in ACTIVE_PHASE_STATES for s in self.phases.values()) <= 1

    @invariant()
    def run_ends_exactly_when_every_phase_is_terminal(self) -> None:
        assert self.run.is_terminal == all(s.is_terminal for s in self.phases.values())

    @invariant()
    def run_fails_exactly_when_a_phase_failed(self) -> None:
        if self.run.is_terminal:
            failed = any(s is PhaseState.FAILED for s in self.phases.values())
            assert self.run is (RunState.DONE_FAILED_BUILD_FAILURE if failed
                                else RunState.DONE_SUCCESS)

    @invariant()
    def tiers_agree_with_their_phases(self) -> None:
        for tier, state in self.tiers.items():
            phases = [s for p, s in self.phases.items() if self.tier_of[p] == tier]
            assert state is tier_state_for(phases)

    @invariant()
    def run_follows_the_active_phase(self) -> None:
        active = [s for s in self.phases.values() if s in ACTIVE_PHASE_STATES]
        expected = {PhaseState.EXECUTING: RunState.PHASE_EXECUTION,
                    PhaseState.GATE: RunState.GATE, PhaseState.CI_RUNNING: RunState.CI_RUNNING}
        if active:
            assert self.run is expected[active[0]]
        assert is_legal(self.run, RunState.DONE_FAILED_ENVIRONMENT) != self.run.is_terminal


RunModel.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestRunModel = RunModel.TestCase


def test_tier_state_examples() -> None:
    P, T = PhaseState, TierState
    assert tier_state_for([P.QUEUED, P.QUEUED]) is T.PENDING
    assert tier_state_for([P.QUEUED, P.SKIPPED]) is T.PENDING
    assert tier_state_for([P.EXECUTING, P.QUEUED]) is T.IN_PROGRESS
    assert tier_state_for([P.COMPLETE, P.QUEUED]) is T.IN_PROGRESS
    assert tier_state_for([P.COMPLETE, P.SKIPPED]) is T.COMPLETE
    assert tier_state_for([P.SKIPPED, P.SKIPPED]) is T.SKIPPED
    assert tier_state_for([P.COMPLETE, P.FAILED, P.QUEUED]) is T.FAILED
