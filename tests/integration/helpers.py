"""Helpers for integration tests: what a database and a folder hold right now."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, func, select

from autopack.db.models import Base


def row_counts(url: str) -> dict[str, int]:
    """Rows per table."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def tree(root: Path, skip: str = "db") -> dict[str, bytes]:
    """Every file under `root` (but the database folder) with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != skip}


def views(root: Path) -> dict[str, bytes]:
    """The view files under `root` with their bytes: hidden files (locks, the spares
    rewrites trade places with) are the writer's, not views."""
    return {rel: data for rel, data in tree(root).items()
            if not any(part.startswith(".") for part in rel.split("/"))}


def table_rows(url: str, table: str) -> list[dict[str, object]]:
    """Every row of one table, as dicts."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(Base.metadata.tables[table]))]
    finally:
        engine.dispose()
