"""`autopack promotion check RUN_DIR`: the promotion decision from a run's artefacts alone.

Reads `run_summary.json` (written beside `run_summary.md`) and applies the same rules as
promotion (SPEC §10.4) to its raw counters — not to the `promotion_eligible_to_main` it
also carries — so a CI job without the database decides exactly as Autopack would.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from autopack.domain.errors import InvalidInput
from autopack.domain.promotion import promotion_blockers
from autopack.plan import jsonfile


class TierSummary(BaseModel):
    """A tier's counters and caps as `run_summary.json` holds them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tier_id: str
    state: str
    tokens_used: int
    token_cap: int
    ci_runs_used: int
    ci_run_cap: int
    minor_issues_count: int
    major_issues_count: int
    max_minor_issues_tolerated: int
    max_major_issues_tolerated: int | None


class RunSummary(BaseModel):
    """The run part of `run_summary.json` that promotion reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    run_id: str
    state: str
    failure_reason: str | None
    debt_status: str
    tiers: list[TierSummary] = Field(min_length=1)  # every run has a tier


def check_run_dir(run_dir: Path) -> tuple[RunSummary, list[str]]:
    """The run's summary and every reason it may not be promoted (empty: eligible)."""
    if not run_dir.is_dir():
        raise InvalidInput(str(run_dir), "not a run folder")
    summary = jsonfile.load(RunSummary, run_dir / "run_summary.json", "run summary",
                            InvalidInput)
    return summary, promotion_blockers(summary, summary.tiers)
