"""Exclusive leases that every process sharing the database sees, whatever its runs
folder or machine.

PostgreSQL: a session advisory lock on a connection kept for the lease and closed after
it, so a lease ends with its holder however the holder ends (the server drops a dead
client's session). SQLite: the kernel's lock on a file beside the database file
(`{database}-leases/{name}.lock`), which every process opening that database shares.
An in-memory SQLite database is private to its process: it has no leases to share.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from autopack.db.database import Database
from autopack.domain.ids import check_id

_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_NAME_HOLDER = text("SELECT set_config('application_name', :name, false)")
_HOLDER = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
    "AND l.objsubid = 1"
)


class LeaseTaken(Exception):
    """Another holder has the lease; `holder` says who, as far as is known."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


def lease_key(name: str) -> int:
    """A signed 64-bit key for `name` (PostgreSQL's advisory lock space)."""
    digest = hashlib.blake2b(f"autopack-lease:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def hold_lease(db: Database, name: str) -> Iterator[None]:
    """Hold the lease `name` (an Autopack id) while the block runs; LeaseTaken if another
    holder has it."""
    check_id(name)
    if db.is_sqlite:
        with _file_lease(db, name):
            yield
    else:
        with _advisory_lease(db, name):
            yield


def _holder_name() -> str:
    return f"autopack pid {os.getpid()} on {socket.gethostname()}"


@contextmanager
def _advisory_lease(db: Database, name: str) -> Iterator[None]:
    key = lease_key(name)
    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        conn.execute(_NAME_HOLDER, {"name": _holder_name()[:63]})
        if not conn.execute(_TRY_LOCK, {"key": key}).scalar_one():
            unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
            holder = conn.execute(_HOLDER, {"hi": unsigned >> 32,
                                            "lo": unsigned & 0xFFFF_FFFF}).scalar()
            raise LeaseTaken(holder or "unknown")
        yield
    finally:
        # never back to the pool: the lock and the name end with this session
        conn.invalidate()
        conn.close()


@contextmanager
def _file_lease(db: Database, name: str) -> Iterator[None]:
    database = make_url(db.url).database
    if not database or database == ":memory:":
        yield
        return
    folder = Path(f"{database}-leases")
    folder.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    with flock_lease(fd, _holder_name()):
        yield


@contextmanager
def flock_lease(fd: int, holder: str) -> Iterator[None]:
    """Hold the kernel's exclusive lock on the open lock file `fd` while the block runs,
    with `holder` written in it; LeaseTaken with what its holder wrote when another has
    it. `fd` is closed afterwards, which releases the lock however the holder ends."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LeaseTaken(
                os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
