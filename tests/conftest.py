"""Shared fixtures: fresh databases (SQLite and PostgreSQL), a real API server."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from autopack.api.app import create_app
from autopack.db.database import Database
from autopack.settings import Settings

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_admin_url() -> str:
    return os.environ.get("AUTOPACK_TEST_DATABASE_URL", PG_DEFAULT)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test clones it. Skips locally, fails in CI."""
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        message = f"PostgreSQL unreachable at {_pg_admin_url()}: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = f"autopack_tpl_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    database.migrate()
    database.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"autopack_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh embedded SQLite database for one test."""
    return f"sqlite:///{tmp_path / 'db' / 'autopack.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings over a fresh database and a runs folder in the test's temp dir."""
    return Settings(database_url=db_url, runs_dir=tmp_path / "runs",
                    data_dir=tmp_path / "data")


class _Server(uvicorn.Server):
    """uvicorn that signals once it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@dataclass
class LiveServer:
    """A running API server and the settings it serves."""

    url: str
    settings: Settings

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn server on 127.0.0.1 serving a fresh database."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", ws="none",
                            lifespan="on", limit_concurrency=1000)
    srv = _Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not srv.ready.wait(timeout=60):
        raise RuntimeError("API server did not start")
    yield LiveServer(f"http://127.0.0.1:{port}", settings)
    srv.should_exit = True
    thread.join(timeout=60)
    sock.close()


def run_body(run_id: str = "run-1", tiers: int = 2, phases_per_tier: tuple[int, ...] = (2, 1),
             **run_fields: object) -> dict[str, object]:
    """A valid POST /runs/start body."""
    tier_list = [{"tier_id": f"T{i + 1}", "tier_index": i, "name": f"Tier {i + 1} work"}
                 for i in range(tiers)]
    phase_list = []
    index = 0
    for t, count in enumerate(phases_per_tier):
        for _ in range(count):
            phase_list.append({"phase_id": f"P{index + 1}", "phase_index": index,
                               "tier_id": f"T{t + 1}", "name": f"Phase {index + 1}"})
            index += 1
    return {"run": {"run_id": run_id, "safety_profile": "normal", "run_scope": "multi_tier",
                    **run_fields},
            "tiers": tier_list, "phases": phase_list}
