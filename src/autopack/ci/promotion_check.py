"""`autopack promotion check RUN_DIR`: the promotion decision from a run's artefacts alone.

Reads `run_summary.json` (written beside `run_summary.md`) and applies the same rules as
promotion (SPEC §10.4) to its raw counters — not to the `promotion_eligible_to_main` it
also carries — so a CI job without the database decides exactly as Autopack would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from autopack.domain.errors import InvalidInput
from autopack.domain.ids import ID_PATTERN
from autopack.domain.promotion import promotion_blockers
from autopack.domain.states import RunState, TierState
from autopack.issues.rules import DebtStatus
from autopack.plan import jsonfile

Count = Annotated[int, Field(ge=0)]
_REASONS = tuple(s.value.removeprefix("DONE_FAILED_") for s in RunState if s.is_failure)


class TierSummary(BaseModel):
    """A tier's counters and caps as `run_summary.json` holds them (checked: a summary
    that no run could have written is unreadable, not eligible)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    tier_id: Annotated[str, Field(pattern=ID_PATTERN)]
    state: TierState
    tokens_used: Count
    token_cap: Count
    ci_runs_used: Count
    ci_run_cap: Count
    minor_issues_count: Count
    major_issues_count: Count
    max_minor_issues_tolerated: Count
    max_major_issues_tolerated: Count | None


class RunSummary(BaseModel):
    """The run part of `run_summary.json` that promotion reads."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    run_id: Annotated[str, Field(pattern=ID_PATTERN)]
    state: RunState
    failure_reason: Literal[_REASONS] | None  # type: ignore[valid-type]
    debt_status: DebtStatus
    tokens_used: Count
    token_cap: Count
    adoption_stage: Literal[0, 1, 2]
    tiers: list[TierSummary] = Field(min_length=1)  # every run has a tier


def check_run_dir(run_dir: Path) -> tuple[RunSummary, list[str]]:
    """The run's summary and every reason it may not be promoted (empty: eligible)."""
    if not run_dir.is_dir():
        raise InvalidInput(str(run_dir), "not a run folder")
    summary = jsonfile.load(RunSummary, run_dir / "run_summary.json", "run summary",
                            InvalidInput)
    return summary, promotion_blockers(summary, summary.tiers)
