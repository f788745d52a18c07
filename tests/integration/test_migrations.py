"""The schema built by the migrations equals the one the models declare."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from autopack.db.database import MIGRATIONS, Database
from autopack.db.models import Base


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def _head() -> str | None:
    return ScriptDirectory.from_config(_config("")).get_current_head()


def test_upgrade_keeps_runs_made_before_projects_and_downgrades(db_url: str) -> None:
    database = Database(db_url)
    with database.engine.connect():  # the first connection makes the SQLite folder
        pass
    command.upgrade(_config(db_url), "0001")
    try:
        with database.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO runs (run_id, state, safety_profile, run_scope, token_cap, "
                "max_phases, max_duration_minutes, max_minor_issues_total, tokens_used, "
                "ci_runs_used, minor_issues_count, major_issues_count, created_at, updated_at, "
                "version) VALUES ('old', 'DONE_SUCCESS', 'normal', 'multi_tier', 1, 1, 1, 1, "
                "0, 0, 0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"))
        database.migrate()
        with database.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT project_id, project_run_seq, debt_status FROM runs")).one()
        assert tuple(row) == ("default", 1, "clean")
        command.downgrade(_config(db_url), "base")
        with database.engine.connect() as conn:
            assert inspect(conn).get_table_names() == ["alembic_version"]
    finally:
        database.dispose()


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
            assert MigrationContext.configure(conn).get_current_revision() == _head()
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
