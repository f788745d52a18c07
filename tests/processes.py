"""Waiting on processes the code under test should have ended (no sleeps)."""

from __future__ import annotations

import os
import select


def ends(pid: int, within: float) -> bool:
    """True once the process has ended (a zombie awaiting its reaper has), waiting on its
    pidfd for at most `within` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], within)[0])
    finally:
        os.close(fd)
