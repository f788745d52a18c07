"""One engine per run: a run is driven by at most one process or thread at a time.

`autopack run`, `autopack resume` and the server's executor all drive runs through
`Engine.run`, which holds the run's lease for the whole drive: an exclusive lock on
`{runs_dir}/{run_id}/.engine.lock`. The lock is the kernel's, so it is released when its
holder ends, however it ends (a killed engine never blocks the resume that follows).
Processes that drive runs share the runs folder, as they share its views.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from autopack.artefacts.layout import RunLayout
from autopack.domain.errors import Conflict


class RunBusy(Conflict):
    """Another engine is driving the run."""


@contextmanager
def drive_lease(layout: RunLayout) -> Iterator[None]:
    """Hold the run's lease while the block runs; RunBusy when another engine holds it."""
    layout.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.root / ".engine.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunBusy(
                f"run {layout.run_id!r} is being driven by another engine (process "
                f"{holder}): an `autopack run`/`resume` or a server; it ends the run by "
                "itself, or resume it once that process is gone"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
