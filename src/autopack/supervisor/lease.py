"""One engine per run: a run is driven by at most one process or thread at a time.

`autopack run`, `autopack resume` and the server's executor all drive runs through
`Engine.run`, which holds the run's lease for the whole drive. The lease is two locks,
both released when their holder ends, however it ends (a killed engine never blocks the
resume that follows):
- the database's lease for the run (`db.leases`), seen by every process using that
  database, whatever its runs folder or machine;
- an exclusive lock on `{runs_dir}/{run_id}/.engine.lock`, seen by every process writing
  that run folder's views, whatever its database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from autopack.artefacts.atomic import open_lock_file, real_folder
from autopack.artefacts.layout import RunLayout
from autopack.db.database import Database
from autopack.db.leases import LeaseTaken, flock_lease, hold_lease
from autopack.domain.errors import Conflict


class RunBusy(Conflict):
    """Another engine is driving the run."""


def _busy(run_id: str, holder: str) -> RunBusy:
    return RunBusy(
        f"run {run_id!r} is being driven by another engine ({holder}): an `autopack "
        "run`/`resume` or a server; it ends the run by itself, or resume it once that "
        "process is gone"
    )


@contextmanager
def drive_lease(layout: RunLayout, db: Database) -> Iterator[None]:
    """Hold the run's lease while the block runs; RunBusy when another engine holds it."""
    with ExitStack() as held:
        layout.runs_dir.mkdir(parents=True, exist_ok=True)
        real_folder(layout.root.parent, layout.root.name)
        lock = open_lock_file(layout.root / ".engine.lock")  # never through a link
        try:
            held.enter_context(flock_lease(lock, str(os.getpid())))
        except LeaseTaken as taken:
            raise _busy(layout.run_id, f"process {taken.holder}") from None
        try:
            held.enter_context(hold_lease(db, layout.run_id))
        except LeaseTaken as taken:
            raise _busy(layout.run_id, taken.holder) from None
        yield
