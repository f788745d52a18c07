"""Database leases (one engine per run): seen by every process using the database,
whatever its runs folder, and released when the holder dies — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from autopack.artefacts.layout import RunLayout
from autopack.db.database import Database
from autopack.db.leases import LeaseTaken, hold_lease, lease_key
from autopack.supervisor.lease import RunBusy, drive_lease


def test_a_held_lease_is_refused_to_a_second_holder_then_free(db_url: str) -> None:
    first, second = Database(db_url), Database(db_url)
    try:
        with hold_lease(first, "run-1"):
            with pytest.raises(LeaseTaken) as taken, hold_lease(second, "run-1"):
                pass
            assert f"autopack pid {os.getpid()}" in taken.value.holder
            with hold_lease(second, "run-2"):  # another name is another lease
                pass
        with hold_lease(second, "run-1"):  # released with the block
            pass
    finally:
        first.dispose()
        second.dispose()


def test_a_lease_name_must_be_an_id(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with pytest.raises(ValueError, match="not a valid id"), hold_lease(db, "../x"):
        pass


def test_two_runs_folders_on_one_database_cannot_drive_one_run(
    db_url: str, tmp_path: Path,
) -> None:
    """The run folder's lock alone let a process with another AUTOPACK_RUNS_DIR drive a
    run already being driven."""
    db, other = Database(db_url), Database(db_url)
    try:
        with drive_lease(RunLayout(tmp_path / "runs-a", "calc"), db), \
                pytest.raises(RunBusy, match="being driven by another engine"), \
                drive_lease(RunLayout(tmp_path / "runs-b", "calc"), other):
            pass
    finally:
        db.dispose()
        other.dispose()


def test_the_lease_of_a_killed_holder_is_free(db_url: str, tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from autopack.db.database import Database
        from autopack.db.leases import hold_lease
        with hold_lease(Database({db_url!r}), "run-1"):
            print("held", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        _outlive(holder, Database(db_url))


def _outlive(holder: subprocess.Popen[str], db: Database) -> None:
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(LeaseTaken) as taken, hold_lease(db, "run-1"):
            pass
        assert f"autopack pid {holder.pid}" in taken.value.holder
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        if not db.is_sqlite:
            # the server ends the session once it reads the closed socket: wait for that
            # by queueing for the lock itself (the kernel freed the file lock at exit)
            with db.engine.connect() as conn:
                conn.execute(text("SET statement_timeout = '60s'"))
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lease_key("run-1")})
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lease_key("run-1")})
                conn.rollback()
        with hold_lease(db, "run-1"):
            pass
    finally:
        holder.kill()
        db.dispose()
