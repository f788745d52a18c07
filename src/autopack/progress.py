"""How `autopack run` shows a run while it goes: a live Rich view on a terminal (tiers,
phases, the current step, tokens against the cap, elapsed time against the duration
cap), plain progress lines otherwise. Both go to stderr; stdout stays for the result."""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from autopack.db.runs import RunView


def render(view: RunView, step: str) -> Group:
    """The live view of a run: a header line and a table of its phases by tier."""
    run = view.run
    created = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=UTC)
    minutes = (datetime.now(UTC) - created).total_seconds() / 60
    header = Text(
        f"run {run.run_id}  {run.state}  tokens {run.tokens_used:,}/{run.token_cap:,}  "
        f"elapsed {minutes:.1f}/{run.max_duration_minutes:g} min  CI runs {run.ci_runs_used}")
    table = Table("tier", "phase", "state", "attempts", "tokens", expand=False)
    for tier in view.tiers:
        for phase in (p for p in view.phases if p.tier_id == tier.tier_id):
            table.add_row(f"{tier.tier_id} ({tier.state})", phase.phase_id, phase.state,
                          f"{phase.builder_attempts}/{phase.max_builder_attempts}",
                          f"{phase.tokens_used:,}")
    return Group(header, table, Text(f"now: {step}"))


class Progress:
    """`on_step` for the engine: live on a terminal, one line per step elsewhere."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        if console.is_terminal:
            self.live = Live(console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> Progress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.live is not None:
            self.live.__exit__(kind, error, trace)

    def __call__(self, view: RunView, step: str) -> None:
        if self.live is not None:
            self.live.update(render(view, step))
        else:
            run = view.run
            self.console.print(f"[{run.run_id}] {step}  (run {run.state}, tokens "
                               f"{run.tokens_used}/{run.token_cap})", markup=False,
                               highlight=False)
