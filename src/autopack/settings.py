"""Process settings, read once from the environment (prefix AUTOPACK_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from autopack.domain.budgets import BudgetDefaults
from autopack.issues.rules import AgingPolicy

DEFAULT_DATABASE_URL = "sqlite:///.autopack/autopack.db"


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

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value
