"""A plan bigger than `max_phases` runs as several runs — the parts the strategy's split
names (SPEC §9) — one after another on one chain of integration branches.

Part k+1 starts at part k's integration tip, so promoting the last part brings the whole
plan; it starts only when part k ended promotion-eligible (DONE_SUCCESS, every tier clean,
no minor-issue debt), so no part builds on work that could not be promoted by itself.
Every part keeps the whole chain in its run inputs, so `autopack resume` of any part
finishes the chain.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autopack.domain.errors import NotFound
from autopack.domain.promotion import promotion_blockers
from autopack.plan.spec import RunSpec
from autopack.strategy.ruleset import Ruleset
from autopack.supervisor.service import Supervisor


def split_spec(spec: RunSpec, split: list[dict[str, Any]]) -> list[RunSpec]:
    """The run specs of a plan: itself, or one per part of the strategy's `split`."""
    if len(split) <= 1:
        return [spec]
    data = spec.model_dump(mode="json", exclude_unset=True)
    parts = []
    for part in split:
        one = copy.deepcopy(data)
        one["run"]["run_id"] = part["run_id"]
        one["tiers"] = [t for t in data["tiers"] if t["tier_id"] in part["tier_ids"]]
        one["phases"] = [p for p in data["phases"] if p["phase_id"] in part["phase_ids"]]
        parts.append(RunSpec.model_validate(one))
    return parts


@dataclass(frozen=True)
class ChainResult:
    """Each part's run id and end state (None: not started), and the last one driven."""

    parts: list[tuple[str, str | None]]
    last_run_id: str
    stopped: str | None
    """Why later parts were not started, if they were not."""


def drive_parts(
    sup: Supervisor, parts: list[RunSpec], drive: Callable[[str, bool], Any],
    ruleset: tuple[Ruleset, str] | None, inputs: dict[str, Any],
) -> ChainResult:
    """Create (when not yet created) and drive each part in turn with
    `drive(run_id, created)`."""
    chain = [p.model_dump(mode="json", exclude_unset=True) for p in parts]
    previous: str | None = None
    stopped = None
    for k, part in enumerate(parts):
        run_id = part.run.run_id
        created = not _exists(sup, run_id)
        if created:
            if previous is not None:
                view = sup.get_run(previous)
                blockers = promotion_blockers(view.run, view.tiers)
                if blockers:
                    stopped = (f"part {previous} is not promotion-eligible, so {run_id} and "
                               f"later parts were not started: {'; '.join(blockers)}")
                    break
            sup.create_run(part, "cli", ruleset, inputs={**inputs, "chain": chain, "part": k},
                           after_run=previous)
        drive(run_id, created)
        previous = run_id
    assert previous is not None
    states = []
    for part in parts:
        run_id = part.run.run_id
        states.append((run_id, sup.get_run(run_id).run.state if _exists(sup, run_id)
                       else None))
    return ChainResult(states, previous, stopped)


def chain_of(inputs: dict[str, Any]) -> list[RunSpec] | None:
    """The parts a run's inputs name, or None for a run that is not part of a chain."""
    chain = inputs.get("chain")
    return [RunSpec.model_validate(p) for p in chain] if chain else None


def _exists(sup: Supervisor, run_id: str) -> bool:
    try:
        sup.get_run(run_id)
    except NotFound:
        return False
    return True
