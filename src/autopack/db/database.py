"""The database handle: engine set-up, migrations on start, units of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from threading import Lock
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from autopack.domain.errors import AutopackError

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnavailable(AutopackError):
    """The database cannot be reached or opened."""


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 60, "isolation_level": None},
        pool_size=16,
        max_overflow=32,
    )

    @event.listens_for(engine, "do_connect")
    def _make_folder(*_args: Any) -> None:
        # on first use, not when the engine is made: a command refusing its input
        # before it touches the database leaves no folder behind
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the lock up front so two writers never deadlock on an upgrade.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def make_engine(url: str) -> Engine:
    """An engine for a sqlite:/// or postgresql+psycopg:// URL."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_size=16, max_overflow=32, pool_pre_ping=True)


class Database:
    """One database: writes go through `write()`, reads through `read()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        # Reads see one snapshot across their statements (PostgreSQL defaults to a new
        # snapshot per statement); SQLite's deferred transactions already do.
        self._reader = self.engine if self.is_sqlite else self.engine.execution_options(
            isolation_level="REPEATABLE READ")
        # SQLite has one writer at a time; queueing threads here is fair and prompt,
        # where SQLite's busy handler would make them sleep and poll.
        self._sqlite_writer = Lock()

    def migrate(self) -> None:
        """Apply every Alembic migration that is not applied yet."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        try:
            with self.engine.begin() as conn:
                if MigrationContext.configure(conn).get_current_revision() == head:
                    return
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except DBAPIError as exc:  # unreachable, or not a database at all
            raise DatabaseUnavailable(f"cannot open database {self.safe_url}: {exc.orig}") from exc

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One unit of work: everything commits together or nothing does.

        Statements are Core statements on a plain connection (no ORM session: nothing
        here needs one, and it cost a fifth of a phase move).
        """
        if self.is_sqlite:
            with self._sqlite_writer, self._writer.begin() as conn:
                yield conn
        else:
            with self._writer.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit of work (one snapshot)."""
        with self._reader.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
