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

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from autopack.artefacts.atomic import open_lock_file, real_folder
from autopack.artefacts.layout import RunLayout
from autopack.db.database import Database
from autopack.db.leases import LeaseTaken, hold_lease
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
    with _folder_lease(layout):
        try:
            with hold_lease(db, layout.run_id):
                yield
        except LeaseTaken as taken:
            raise _busy(layout.run_id, taken.holder) from None


@contextmanager
def _folder_lease(layout: RunLayout) -> Iterator[None]:
    layout.runs_dir.mkdir(parents=True, exist_ok=True)
    real_folder(layout.root.parent, layout.root.name)
    fd = open_lock_file(layout.root / ".engine.lock")  # never through a link: we write it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise _busy(layout.run_id, f"process {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
