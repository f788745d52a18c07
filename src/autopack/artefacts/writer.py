"""Render a run's views from its DB rows and write them atomically.

Every write happens under the run folder's (or the backlog's) lock, so each file has one
writer at a time, as `swap_in` needs.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from autopack.artefacts.atomic import open_lock_file, real_folder, swap_in
from autopack.artefacts.layout import RunLayout, backlog_file
from autopack.db.runs import RunView
from autopack.domain.errors import PolicyViolation
from autopack.domain.promotion import promotion_blockers, tier_cleanliness, tier_flags
from autopack.issues.documents import (
    backlog_document,
    phase_issue_document,
    run_index_document,
)
from autopack.jsontext import document_bytes


def _cell(text: str) -> str:
    """Text safe inside one markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


RUN_FOLDERS = ("tiers", "phases", "issues")
"""The folders of a run's views (checked to be real folders at every write)."""

_ENV = Environment(
    loader=PackageLoader("autopack.artefacts", "templates"),
    undefined=StrictUndefined,
    autoescape=False,  # markdown, not HTML
    keep_trailing_newline=True,
)
_ENV.filters["cell"] = _cell
_RUN = _ENV.get_template("run_summary.md.j2")
_TIER = _ENV.get_template("tier.md.j2")
_PHASE = _ENV.get_template("phase.md.j2")


def render_run_summary(view: RunView) -> str:
    """`run_summary.md`."""
    counts = {t.tier_id: 0 for t in view.tiers}
    for phase in view.phases:
        counts[phase.tier_id] += 1
    return _RUN.render(run=view.run, tiers=view.tiers, phases=view.phases, phase_counts=counts)


def summary_document(view: RunView) -> dict[str, Any]:
    """`run_summary.json`: what a promotion check needs, readable without the database."""
    run = view.run
    return {
        "run_id": run.run_id, "project_id": run.project_id, "state": run.state,
        "failure_reason": run.failure_reason, "debt_status": run.debt_status,
        "safety_profile": run.safety_profile, "run_scope": run.run_scope,
        "adoption_stage": run.adoption_stage,
        "tokens_used": run.tokens_used, "token_cap": run.token_cap,
        "ci_runs_used": run.ci_runs_used,
        "minor_issues_count": run.minor_issues_count,
        "major_issues_count": run.major_issues_count,
        "promotion_eligible_to_main": not promotion_blockers(run, view.tiers),
        "promotion_blockers": promotion_blockers(run, view.tiers),
        "tiers": [{
            "tier_id": t.tier_id, "tier_index": t.tier_index, "name": t.name, "state": t.state,
            "cleanliness": tier_cleanliness(t).value, "flags": tier_flags(t),
            "minor_issues_count": t.minor_issues_count,
            "major_issues_count": t.major_issues_count,
            "max_minor_issues_tolerated": t.max_minor_issues_tolerated,
            "max_major_issues_tolerated": t.max_major_issues_tolerated,
            "tokens_used": t.tokens_used, "token_cap": t.token_cap,
            "ci_runs_used": t.ci_runs_used, "ci_run_cap": t.ci_run_cap,
        } for t in view.tiers],
    }


def render_tier(view: RunView, tier_id: str) -> str:
    """`tiers/tier_NN_name.md`."""
    phases = [p for p in view.phases if p.tier_id == tier_id]
    tier = view.tier(tier_id)
    return _TIER.render(run=view.run, tier=tier, phases=phases,
                        cleanliness=tier_cleanliness(tier).value, flags=tier_flags(tier))


def render_phase(view: RunView, phase_id: str) -> str:
    """`phases/phase_NN_id.md`."""
    return _PHASE.render(run_id=view.run.run_id, phase=view.phase(phase_id))


class ArtefactWriter:
    """Writes the views of runs under one runs folder."""

    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir

    def layout(self, run_id: str) -> RunLayout:
        """The paths of one run."""
        return RunLayout(self.runs_dir, run_id)

    @contextmanager
    def locked(self, run_id: str) -> Iterator[RunLayout]:
        """Hold the run folder's lock: read the DB and write files inside it.

        Whoever writes last read the DB last, so the files end equal to the DB.
        """
        layout = self.layout(run_id)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        real_folder(layout.root.parent, layout.root.name)
        with _flock(layout.lock_file):
            for folder in RUN_FOLDERS:
                real_folder(layout.root, folder)
            yield layout

    def check_folder(self, run_id: str) -> None:
        """PolicyViolation when the run's folder, a folder of it or its lock file is a
        link or a file (e.g. committed to the repository): checked before a run is
        created, so nothing is written for a run whose files could not be."""
        layout = self.layout(run_id)
        for path in (layout.root, *(layout.root / f for f in (*RUN_FOLDERS, "logs",
                                                             "incident"))):
            if path.is_symlink() or (path.exists() and not path.is_dir()):
                raise PolicyViolation(f"{path} is a link or a file where Autopack keeps "
                                      f"run {run_id!r}'s files")
        for lock in (layout.lock_file, layout.root / ".engine.lock"):
            if lock.is_symlink():
                raise PolicyViolation(f"{lock} is a link where Autopack keeps a lock file")

    @contextmanager
    def backlog_locked(self, project_id: str) -> Iterator[Path]:
        """Hold the lock of a project's backlog file (same rule as `locked`)."""
        path = backlog_file(self.runs_dir, project_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _flock(path.with_name(f".{path.name}.lock")):
            yield path

    def write_backlog(self, path: Path, project_id: str, rows: Iterable[Any]) -> None:
        """`project_issue_backlog.json` from the project's backlog rows."""
        _put_json(path, backlog_document(project_id, list(rows)))

    def write_issues(
        self, layout: RunLayout, view: RunView, issues: Iterable[Any], links: Iterable[Any],
        backlog: dict[str, Any], phase_ids: Iterable[str] | None = None,
    ) -> None:
        """Phase issue files (of `phase_ids`, default all) and the run issue index."""
        by_key = {i.issue_key: i for i in issues}
        link_list = list(links)
        for phase_id in phase_ids if phase_ids is not None else (p.phase_id for p in view.phases):
            phase = view.phase(phase_id)
            _put_json(layout.phase_issues_file(phase.phase_index, phase_id),
                      phase_issue_document(phase, by_key, link_list, backlog))
        _put_json(layout.run_issue_index,
                  run_index_document(view.run, list(by_key.values()), link_list))

    def rendered(
        self, layout: RunLayout, view: RunView, issues: Iterable[Any], links: Iterable[Any],
        backlog: dict[str, Any], strategy: tuple[int, str],
    ) -> dict[str, bytes]:
        """Every view `regenerate` writes, rendered in memory, by path relative to the run
        folder: what a run's summary commit holds (built from the database, never read
        back from the folder, where a command could have put anything)."""
        files = {layout.run_summary: render_run_summary(view).encode(),
                 layout.run_summary_json: document_bytes(summary_document(view)),
                 layout.strategy_file(strategy[0]): strategy[1].encode()}
        for tier in view.tiers:
            files[layout.tier_file(tier.tier_index, tier.name, tier.tier_id)] = (
                render_tier(view, tier.tier_id).encode())
        for phase in view.phases:
            files[layout.phase_file(phase.phase_index, phase.phase_id)] = (
                render_phase(view, phase.phase_id).encode())
        by_key = {i.issue_key: i for i in issues}
        link_list = list(links)
        for phase in view.phases:
            files[layout.phase_issues_file(phase.phase_index, phase.phase_id)] = (
                document_bytes(phase_issue_document(phase, by_key, link_list, backlog)))
        files[layout.run_issue_index] = document_bytes(
            run_index_document(view.run, list(by_key.values()), link_list))
        return {path.relative_to(layout.root).as_posix(): data
                for path, data in files.items()}

    def write_rendered(self, layout: RunLayout, files: dict[str, bytes]) -> None:
        """Write `rendered` files into the run folder (and the empty issues/ folder)."""
        layout.issues_dir.mkdir(parents=True, exist_ok=True)
        for rel, data in files.items():
            swap_in(layout.root / rel, data)

    def write_phases(self, layout: RunLayout, view: RunView, phase_ids: Iterable[str]) -> None:
        """The views a change to some phases touches: those phases, their tiers, the summary."""
        tiers = set()
        for phase_id in phase_ids:
            self._write_phase(layout, view, phase_id)
            tiers.add(view.phase(phase_id).tier_id)
        for tier_id in sorted(tiers):
            self._write_tier(layout, view, tier_id)
        _put_text(layout.run_summary, render_run_summary(view))
        _put_json(layout.run_summary_json, summary_document(view))

    def _write_phase(self, layout: RunLayout, view: RunView, phase_id: str) -> None:
        phase = view.phase(phase_id)
        _put_text(layout.phase_file(phase.phase_index, phase_id), render_phase(view, phase_id))

    def _write_tier(self, layout: RunLayout, view: RunView, tier_id: str) -> None:
        tier = view.tier(tier_id)
        _put_text(layout.tier_file(tier.tier_index, tier.name, tier_id),
                  render_tier(view, tier_id))


def _put_text(path: Path, text: str) -> None:
    swap_in(path, text.encode())


def _put_json(path: Path, document: Any) -> None:
    swap_in(path, document_bytes(document))


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
