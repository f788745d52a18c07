"""Run splitting: a plan bigger than `max_phases` becomes several runs, cut at tiers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autopack.domain.categories import RunScope


@dataclass(frozen=True)
class RunPart:
    """One run of a split plan: its id and the tiers and phases it takes."""

    run_id: str
    tier_ids: tuple[str, ...]
    phase_ids: tuple[str, ...]


def split_plan(
    run_id: str, tiers: Sequence[tuple[str, Sequence[str]]], max_phases: int, scope: RunScope
) -> list[RunPart]:
    """Tiers (in order, each with its phases in order) packed into runs.

    `multi_tier`: consecutive whole tiers while they fit in `max_phases`; `single_tier`:
    one run per tier. A tier bigger than `max_phases` is cut into chunks of that size.
    One part keeps the plan's run id; several are `{run_id}-1`, `{run_id}-2`, ...
    """
    groups: list[tuple[list[str], list[str]]] = []
    for tier_id, phase_ids in tiers:
        chunks = [list(phase_ids[i:i + max_phases])
                  for i in range(0, len(phase_ids), max_phases)] or [[]]
        for chunk in chunks:
            last = groups[-1] if groups else None
            fits = last is not None and len(last[1]) + len(chunk) <= max_phases
            if scope is RunScope.MULTI_TIER and fits and len(chunks) == 1 and last is not None:
                last[0].append(tier_id)
                last[1].extend(chunk)
            else:
                groups.append(([tier_id], list(chunk)))
    if len(groups) == 1:
        return [RunPart(run_id, tuple(groups[0][0]), tuple(groups[0][1]))]
    base = run_id[:128 - len(f"-{len(groups)}")]
    return [RunPart(f"{base}-{n}", tuple(t), tuple(p)) for n, (t, p) in enumerate(groups, 1)]
