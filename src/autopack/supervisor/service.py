"""The Supervisor's service surface, used by the API and the CLI.

Each operation is one unit of work in the database, followed (only once it committed)
by regenerating the affected artefacts from a fresh read under the run folder's lock.
A refused request therefore writes nothing: no row and no file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row

from autopack.artefacts.layout import RunLayout
from autopack.artefacts.writer import ArtefactWriter
from autopack.db import issues, runs
from autopack.db.database import Database
from autopack.db.issues import IssueReport, RecordedIssue
from autopack.db.models import utcnow
from autopack.db.runs import PhaseStatusResult, PhaseStatusUpdate, RunView
from autopack.issues.documents import backlog_document, run_index_document
from autopack.plan.spec import RunSpec
from autopack.settings import Settings
from autopack.strategy.engine import (
    BacklogItem,
    StrategyInput,
    compile_strategy,
    effective_aging,
)
from autopack.strategy.engine import to_json as strategy_json
from autopack.strategy.ruleset import BUILTIN, Ruleset, load_ruleset
from autopack.supervisor.apply import GovernedApply
from autopack.supervisor.faults import crash_point


class Supervisor:
    """Run lifecycle operations over one database and one runs folder."""

    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self.db = database or Database(settings.database_url)
        self.artefacts = ArtefactWriter(settings.runs_dir)
        self.apply = GovernedApply(settings, self.db, self.record_issue, self.rendered)

    def start(self) -> None:
        """Bring the database schema up to date."""
        self.db.migrate()

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def create_run(
        self, spec: RunSpec, actor: str, ruleset: tuple[Ruleset, str] | None = None,
        inputs: dict[str, Any] | None = None, after_run: str | None = None,
    ) -> RunView:
        """Create a run with its tiers and phases, queued, as its strategy compiles them
        (from `ruleset`, else the configured one, else the built-in defaults); freeze the
        strategy; write the run folder and the backlog.

        With a repository, its main tip becomes the run's base commit and the
        integration branch `autopack/integration/{run_id}` is created there (at the
        integration tip of `after_run` instead, for the next part of a split plan).
        """
        rules, source = ruleset or self.ruleset()
        self.artefacts.check_folder(spec.run.run_id)
        binding = self.apply.bind(spec, after_run)
        aging = effective_aging(rules, self.settings.aging)
        stored = json.dumps(inputs, sort_keys=True) if inputs is not None else None
        with self.db.write() as conn:
            runs.create_run(conn, spec, aging, actor,
                            lambda backlog: self._compile(spec, rules, source, backlog),
                            strategy_json, binding, stored)
        if binding is not None:
            crash_point("run_created")
            # after the commit: a process dying here leaves a run whose engine makes the
            # branch when it starts (`restore_branch`), not a branch no run owns
            self.apply.start(spec.run.run_id, binding)
        return self.regenerate(spec.run.run_id)

    def ruleset(self) -> tuple[Ruleset, str]:
        """The configured ruleset and where it came from (`builtin` when none is set)."""
        return configured_ruleset(self.settings)

    def dry_run(self, spec: RunSpec, ruleset: tuple[Ruleset, str] | None = None
                ) -> dict[str, Any]:
        """The strategy `spec` would get now, with the project's backlog; writes nothing."""
        rules, source = ruleset or self.ruleset()
        with self.db.read() as conn:
            backlog = issues.open_backlog_with_evidence(conn, spec.run.project_id)
        return self._compile(spec, rules, source, backlog)

    def run_inputs(self, run_id: str) -> dict[str, Any] | None:
        """What `autopack run` started the run with (for resuming it)."""
        with self.db.read() as conn:
            runs.get_run(conn, run_id)
            document = runs.get_inputs(conn, run_id)
        loaded: dict[str, Any] | None = json.loads(document) if document else None
        return loaded

    def strategy(self, run_id: str) -> dict[str, Any]:
        """A run's frozen strategy document."""
        with self.db.read() as conn:
            document: str = runs.get_strategy(conn, run_id).document
        loaded: dict[str, Any] = json.loads(document)
        return loaded

    def _compile(self, spec: RunSpec, rules: Ruleset, source: str,
                 backlog: Sequence[tuple[Any, list[str]]]) -> dict[str, Any]:
        return compile_for(self.settings, spec, (rules, source), backlog)

    def get_run(self, run_id: str) -> RunView:
        """A run with its tiers and phases."""
        with self.db.read() as conn:
            return runs.get_run(conn, run_id)

    def run_version(self, run_id: str) -> int:
        """The run's version: it changes whenever the run, a tier or a phase does."""
        with self.db.read() as conn:
            return runs.run_version(conn, run_id)

    def list_runs(self, limit: int = 100) -> Sequence[Row[Any]]:
        """The newest runs first."""
        with self.db.read() as conn:
            return runs.list_runs(conn, limit)

    def events(self, run_id: str) -> Sequence[Row[Any]]:
        """A run's event log."""
        with self.db.read() as conn:
            runs.get_run(conn, run_id)
            return runs.list_events(conn, run_id)

    def update_phase_status(
        self, run_id: str, phase_id: str, change: PhaseStatusUpdate, actor: str,
        external: bool = False,
    ) -> tuple[PhaseStatusResult, RunView]:
        """Move a phase; roll its tier and run; rewrite the views it touched. An
        `external` change (the API's) is refused (Conflict) on a run the engine drives.

        Returns what changed and the run as read after the change.
        """
        with self.db.write() as conn:
            result = runs.update_phase_status(conn, run_id, phase_id, change, actor, external)
        counted = change.minor_issues_count is not None or change.major_issues_count is not None
        view = self._write_after_change(run_id, [phase_id], with_issues=counted)
        return result, view

    def fail_run(self, run_id: str, reason: str, detail: str, actor: str) -> RunView:
        """End the run as DONE_FAILED_{reason} (remaining phases skipped); rewrite views."""
        with self.db.write() as conn:
            runs.finish_failed(conn, run_id, reason, detail, actor)
        return self.regenerate(run_id)

    def record_issue(
        self, run_id: str, phase_id: str, report: IssueReport
    ) -> tuple[RecordedIssue, RunView]:
        """Record one observation of an issue; rewrite the phase, index and backlog files."""
        with self.db.write() as conn:
            recorded = issues.record_issue(conn, run_id, phase_id, report, utcnow())
        return recorded, self._write_after_change(run_id, [phase_id], with_issues=True)

    def issue_index(self, run_id: str) -> dict[str, Any]:
        """The run issue index document (as in `run_issue_index.json`)."""
        with self.db.read() as conn:
            view = runs.get_run(conn, run_id)
            rows, links = issues.run_issues(conn, run_id)
        return run_index_document(view.run, rows, links)

    def backlog(self, project_id: str) -> dict[str, Any]:
        """The project backlog document (as in `project_issue_backlog.json`)."""
        with self.db.read() as conn:
            return backlog_document(project_id, issues.backlog(conn, project_id))

    def top_backlog(self, project_id: str, limit: int = 20) -> Sequence[Row[Any]]:
        """Backlog keys by seen_in_runs, seen_in_tiers, occurrence_count (SPEC §11)."""
        with self.db.read() as conn:
            return issues.top_backlog(conn, project_id, limit)

    def regenerate(self, run_id: str) -> RunView:
        """Rewrite every view of a run, and its project's backlog, from the database
        (NotFound for an unknown run, before its folder would be made)."""
        self.get_run(run_id)
        with self.artefacts.locked(run_id) as layout:
            view, files = self._rendered(run_id, layout)
            self.artefacts.write_rendered(layout, files)
        self._write_backlog(view.run.project_id)
        return view

    def rendered(self, run_id: str) -> dict[str, bytes]:
        """Every view of the run, rendered from the database, by path relative to its
        folder (what `regenerate` writes)."""
        return self._rendered(run_id, self.artefacts.layout(run_id))[1]

    def _rendered(self, run_id: str, layout: RunLayout) -> tuple[RunView, dict[str, bytes]]:
        with self.db.read() as conn:
            view, rows, links, seen = _with_issues(conn, run_id)
            strategy = runs.get_strategy(conn, run_id)
        return view, self.artefacts.rendered(layout, view, rows, links, seen,
                                             (strategy.version, strategy.document))

    def _write_after_change(
        self, run_id: str, phase_ids: Iterable[str], with_issues: bool
    ) -> RunView:
        touched = set(phase_ids)
        with self.artefacts.locked(run_id) as layout:
            if not with_issues:
                view = self.get_run(run_id)
                self.artefacts.write_phases(layout, view, sorted(touched))
                return view
            view, rows, links, seen = self._read_with_issues(run_id)
            keys = {link.issue_key for link in links if link.phase_id in touched}
            touched |= {link.phase_id for link in links if link.issue_key in keys}
            self.artefacts.write_phases(layout, view, sorted(touched))
            self.artefacts.write_issues(layout, view, rows, links, seen, sorted(touched))
        self._write_backlog(view.run.project_id)
        return view

    def _read_with_issues(
        self, run_id: str
    ) -> tuple[RunView, Sequence[Row[Any]], Sequence[Row[Any]], dict[str, Row[Any]]]:
        with self.db.read() as conn:
            return _with_issues(conn, run_id)

    def _write_backlog(self, project_id: str) -> None:
        with self.artefacts.backlog_locked(project_id) as path, self.db.read() as conn:
            self.artefacts.write_backlog(path, project_id, issues.backlog(conn, project_id))


def _with_issues(
    conn: Connection, run_id: str
) -> tuple[RunView, Sequence[Row[Any]], Sequence[Row[Any]], dict[str, Row[Any]]]:
    """The run, its issues and where they were seen, and the backlog rows of its keys."""
    view = runs.get_run(conn, run_id)
    rows, links = issues.run_issues(conn, run_id)
    seen = issues.backlog_for_keys(conn, view.run.project_id, [r.issue_key for r in rows])
    return view, rows, links, {b.issue_key: b for b in seen}


def configured_ruleset(settings: Settings) -> tuple[Ruleset, str]:
    """The configured ruleset and where it came from (`builtin` when none is set)."""
    if settings.ruleset is None:
        return BUILTIN, "builtin"
    return load_ruleset(settings.ruleset), str(settings.ruleset)


def compile_for(
    settings: Settings, spec: RunSpec, ruleset: tuple[Ruleset, str] | None = None,
    backlog: Sequence[tuple[Any, list[str]]] = (),
) -> dict[str, Any]:
    """The strategy of `spec` under `settings` (no database needed; empty backlog default)."""
    rules, source = ruleset or configured_ruleset(settings)
    items = tuple(BacklogItem(
        issue_key=row.issue_key, category=row.category, base_severity=row.base_severity,
        status=row.status, age_in_runs=row.age_in_runs, age_in_tiers=row.age_in_tiers,
        evidence_refs=tuple(evidence)) for row, evidence in backlog)
    return compile_strategy(StrategyInput(spec, rules, source, items, settings.budgets,
                                          settings.aging))
