"""The Supervisor's service surface, used by the API and the CLI.

Each operation is one unit of work in the database, followed (only once it committed)
by regenerating the affected artefacts from a fresh read under the run folder's lock.
A refused request therefore writes nothing: no row and no file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from autopack.artefacts.writer import ArtefactWriter
from autopack.db import runs
from autopack.db.database import Database
from autopack.db.runs import PhaseStatusResult, PhaseStatusUpdate, RunView
from autopack.plan.spec import RunSpec
from autopack.settings import Settings


class Supervisor:
    """Run lifecycle operations over one database and one runs folder."""

    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self.db = database or Database(settings.database_url)
        self.artefacts = ArtefactWriter(settings.runs_dir)

    def start(self) -> None:
        """Bring the database schema up to date."""
        self.db.migrate()

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    def create_run(self, spec: RunSpec, actor: str) -> RunView:
        """Create a run with its tiers and phases, queued; write its folder."""
        with self.db.write() as session:
            runs.create_run(session, spec, self.settings.budgets, actor)
        return self.regenerate(spec.run.run_id)

    def get_run(self, run_id: str) -> RunView:
        """A run with its tiers and phases."""
        with self.db.read() as session:
            return runs.get_run(session, run_id)

    def run_version(self, run_id: str) -> int:
        """The run's version: it changes whenever the run, a tier or a phase does."""
        with self.db.read() as session:
            return runs.run_version(session, run_id)

    def list_runs(self, limit: int = 100) -> Sequence[Row[Any]]:
        """The newest runs first."""
        with self.db.read() as session:
            return runs.list_runs(session, limit)

    def events(self, run_id: str) -> Sequence[Row[Any]]:
        """A run's event log."""
        with self.db.read() as session:
            runs.get_run(session, run_id)
            return runs.list_events(session, run_id)

    def update_phase_status(
        self, run_id: str, phase_id: str, change: PhaseStatusUpdate, actor: str
    ) -> tuple[PhaseStatusResult, RunView]:
        """Move a phase; roll its tier and run; rewrite the views it touched.

        Returns what changed and the run as read after the change.
        """
        with self.db.write() as session:
            result = runs.update_phase_status(session, run_id, phase_id, change, actor)
        with self.artefacts.locked(run_id) as layout:
            run = self.get_run(run_id)
            self.artefacts.write_phase(layout, run, phase_id)
        return result, run

    def regenerate(self, run_id: str) -> RunView:
        """Rewrite every view of a run from the database."""
        with self.artefacts.locked(run_id) as layout:
            run = self.get_run(run_id)
            self.artefacts.write_all(layout, run)
        return run
