"""Crash points: where the engine can be made to die, to prove `autopack resume`.

With `AUTOPACK_CRASH_AT=<point>` (or `<point>@<n>`) in its environment, a process kills
itself with SIGKILL the first (n-th) time it reaches that point — no cleanup, no
flushing, exactly as a power cut or an OOM kill would. Without the variable a crash
point does nothing. The points sit at the step boundaries of the engine, where a
half-done step is most likely to be left behind.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "run_created",          # the run is in the database, its integration branch not made
    "attempt_opened",       # the attempt is stored (empty), its worktree exists
    "built",                # the builder changed the worktree and its usage is charged
    "gated",                # the change is stored and passed the gate
    "ci_done",              # CI finished and is recorded with the attempt's outcome
    "concluded",            # the attempt is over and its worktree removed
    "reviewed",             # the Auditor's verdict is recorded and charged
    "snapshot_committed",   # the snapshot commit and tag exist, not yet in the database
    "snapshot_recorded",    # the snapshot is in the database, the phase not yet COMPLETE
    "phase_complete",       # the phase is COMPLETE, the next not yet started
)


_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here when AUTOPACK_CRASH_AT names this point (`point`: the first time it is
    reached; `point@n`: the n-th time)."""
    wanted = os.environ.get("AUTOPACK_CRASH_AT")
    if not wanted or wanted.partition("@")[0] != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(wanted.partition("@")[2] or 1):
        os.kill(os.getpid(), signal.SIGKILL)
