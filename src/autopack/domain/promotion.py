"""Tier cleanliness and promotion eligibility (SPEC §9, §10.4) — pure rules.

A tier is `not_clean` when it failed or went over one of its caps: more distinct minor
or major issues than it tolerates, more tokens than its token_cap, more CI runs than
its ci_run_cap. A run is eligible for promotion to main only when it is DONE_SUCCESS,
every tier is clean, no budget failure occurred and its debt_status is not
`excess_minor_issues`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Protocol

from autopack.domain.states import RunState, TierState


class Cleanliness(StrEnum):
    """Whether a tier stayed within its policy."""

    CLEAN = "clean"
    NOT_CLEAN = "not_clean"


class TierCounters(Protocol):
    """The columns of a tier that cleanliness reads."""

    @property
    def tier_id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def tokens_used(self) -> int: ...
    @property
    def token_cap(self) -> int: ...
    @property
    def ci_runs_used(self) -> int: ...
    @property
    def ci_run_cap(self) -> int: ...
    @property
    def minor_issues_count(self) -> int: ...
    @property
    def major_issues_count(self) -> int: ...
    @property
    def max_minor_issues_tolerated(self) -> int: ...
    @property
    def max_major_issues_tolerated(self) -> int | None: ...


class RunOutcome(Protocol):
    """The columns of a run that promotion eligibility reads."""

    @property
    def state(self) -> str: ...
    @property
    def failure_reason(self) -> str | None: ...
    @property
    def debt_status(self) -> str: ...
    @property
    def tokens_used(self) -> int: ...
    @property
    def token_cap(self) -> int: ...
    @property
    def adoption_stage(self) -> int: ...


def tier_flags(tier: TierCounters) -> list[str]:
    """Why a tier is not clean; empty when it is clean."""
    flags = []
    if tier.state == TierState.FAILED:
        flags.append("tier failed")
    if tier.minor_issues_count > tier.max_minor_issues_tolerated:
        flags.append(f"{tier.minor_issues_count} minor issues, "
                     f"{tier.max_minor_issues_tolerated} tolerated")
    major_cap = tier.max_major_issues_tolerated
    if major_cap is not None and tier.major_issues_count > major_cap:
        flags.append(f"{tier.major_issues_count} major issues, {major_cap} tolerated")
    if tier.tokens_used > tier.token_cap:
        flags.append(f"tokens {tier.tokens_used} over cap {tier.token_cap}")
    if tier.ci_runs_used > tier.ci_run_cap:
        flags.append(f"CI runs {tier.ci_runs_used} over cap {tier.ci_run_cap}")
    return flags


def tier_cleanliness(tier: TierCounters) -> Cleanliness:
    """`clean` or `not_clean`."""
    return Cleanliness.NOT_CLEAN if tier_flags(tier) else Cleanliness.CLEAN


def promotion_blockers(run: RunOutcome, tiers: Iterable[TierCounters]) -> list[str]:
    """Every reason the run may not be promoted; empty when it is eligible."""
    reasons = []
    if run.state != RunState.DONE_SUCCESS:
        reasons.append(f"run is {run.state}, not DONE_SUCCESS")
    if run.failure_reason and "BUDGET" in run.failure_reason.upper():
        reasons.append(f"budget failure: {run.failure_reason}")
    if run.debt_status == "excess_minor_issues":
        reasons.append("debt_status is excess_minor_issues")
    if run.tokens_used > run.token_cap:  # however the run came to end in success
        reasons.append(f"run tokens {run.tokens_used} exceed the cap {run.token_cap}")
    if run.adoption_stage < 2:  # SPEC §11: full promotion blocking comes with stage 2
        return reasons
    for tier in tiers:
        for flag in tier_flags(tier):
            reasons.append(f"tier {tier.tier_id} is not_clean: {flag}")
    return reasons
