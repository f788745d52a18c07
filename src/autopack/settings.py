"""Process settings, read once from the environment (prefix AUTOPACK_)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from autopack.domain.budgets import BudgetDefaults
from autopack.issues.rules import AgingPolicy
from autopack.vcs.scope import GatePolicy

DEFAULT_DATABASE_URL = "sqlite:///.autopack/autopack.db"


def default_data_dir() -> Path:
    """$XDG_DATA_HOME/autopack, else ~/.local/share/autopack."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join("~", ".local", "share")
    return Path(base).expanduser() / "autopack"


class Settings(BaseSettings):
    """Where Autopack keeps its state and how much input it accepts.

    Nested values are set with a double underscore, e.g.
    AUTOPACK_BUDGETS__RUN__TOKEN_CAP=2000000 or
    AUTOPACK_AGING__MINOR_ISSUE_AGING_RUNS_THRESHOLD=5.
    """

    model_config = SettingsConfigDict(
        env_prefix="AUTOPACK_", env_nested_delimiter="__", extra="ignore"
    )

    database_url: str = DEFAULT_DATABASE_URL
    runs_dir: Path = Path(".autonomous_runs")
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    run_cache_size: int = Field(512, ge=0)
    budgets: BudgetDefaults = BudgetDefaults()
    aging: AgingPolicy = AgingPolicy()
    data_dir: Path = Field(default_factory=default_data_dir)
    """Attempt worktrees live here, outside every user's working tree."""
    git_author_name: str = Field("Autopack", min_length=1)
    git_author_email: str = Field("autopack@localhost", min_length=1)
    gate: GatePolicy = GatePolicy()
    max_diff_bytes: int = Field(32 * 1024 * 1024, gt=0)
    """A canonical diff larger than this is stored as a summary only."""
    promotion_merge: bool = True
    """Promote by a merge commit when main has moved; false: fast-forward only."""
    run_workers: int = Field(4, ge=1, le=256)
    """How many runs the server drives at once (POST /runs/start with execute)."""
    ruleset: Path | None = None
    """The project ruleset (`project_ruleset_vN.json`); None: the built-in defaults."""
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1", "[::1]"], min_length=1)
    """Host headers the API answers (others get 400): a web page whose name an attacker
    points at 127.0.0.1 (DNS rebinding) must not reach it. Add the name a proxy uses."""
    api_writers: int | None = Field(None, ge=1, le=64)
    """How many state-changing API requests run at once; None: 1 on SQLite (one writer
    at a time anyway), 4 on PostgreSQL (so commits overlap their WAL flushes)."""

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            url = None
        if url is None or url.drivername not in ("sqlite", "sqlite+pysqlite",
                                                 "postgresql+psycopg"):
            raise ValueError("must be a sqlite:///PATH or postgresql+psycopg:// URL")
        if url.drivername.startswith("sqlite") and url.database in (None, "", ":memory:"):
            raise ValueError("a sqlite URL names a database file: sqlite:///PATH")
        return value

    @field_validator("runs_dir", "data_dir")
    @classmethod
    def _a_folder(cls, value: Path) -> Path:
        blocked = not_a_folder(value)
        if blocked is not None:
            raise ValueError(f"{blocked} is not a folder")
        return value


def not_a_folder(path: Path) -> Path | None:
    """What keeps `path` from being (or becoming) a folder: itself or the nearest
    existing parent when that is not a folder; None when nothing does."""
    for part in (path, *path.parents):
        if part.exists():
            return None if part.is_dir() else part
        if part.is_symlink():  # a link to nothing: no folder can be made there
            return part
    return None
