"""The schema built by the migrations equals the one the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from autopack.db.database import Database
from autopack.db.models import Base


def test_migrations_match_the_models(db_url: str) -> None:
    database = Database(db_url)
    try:
        database.migrate()
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert set(inspect(conn).get_table_names()) >= {"runs", "tiers", "phases", "events"}
    finally:
        database.dispose()


def test_migrating_twice_changes_nothing(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        database.migrate()
        database.migrate()
        with database.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == "0001"
    finally:
        database.dispose()


def test_every_lookup_path_has_an_index(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        database.migrate()
        inspector = inspect(database.engine)
        def covered(table: str) -> set[tuple[str, ...]]:
            keys = {tuple(i["column_names"]) for i in inspector.get_indexes(table)}
            keys |= {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)}
            return keys
        phases = {("run_id", "phase_id"), ("run_id", "phase_index"), ("run_id", "tier_id")}
        assert phases <= covered("phases")
        assert {("run_id", "tier_id"), ("run_id", "tier_index")} <= covered("tiers")
        assert {("run_id", "id"), ("run_id", "entity", "entity_id")} <= covered("events")
        assert {("created_at",), ("state",)} <= covered("runs")
    finally:
        database.dispose()
