"""SQLAlchemy 2 models: runs, tiers, phases and the append-only event log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ID = String(128)
STATE = String(64)
# SQLite only auto-increments INTEGER PRIMARY KEY columns.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RunRow(Base):
    """One autonomous build run and its run-level budgets and counters."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(ID, primary_key=True)
    state: Mapped[str] = mapped_column(STATE)
    safety_profile: Mapped[str] = mapped_column(String(32))
    run_scope: Mapped[str] = mapped_column(String(32))
    token_cap: Mapped[int] = mapped_column(BigInteger)
    max_phases: Mapped[int] = mapped_column(Integer)
    max_duration_minutes: Mapped[float] = mapped_column(Float)
    max_minor_issues_total: Mapped[int] = mapped_column(Integer)
    tokens_used: Mapped[int] = mapped_column(BigInteger, default=0)
    ci_runs_used: Mapped[int] = mapped_column(Integer, default=0)
    minor_issues_count: Mapped[int] = mapped_column(Integer, default=0)
    major_issues_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(STATE, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bumped by every change to the run, its tiers or its phases (an ETag for reads).
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index(None, "created_at"),
        Index(None, "state"),
    )


class TierRow(Base):
    """A group of phases with its own caps and counters."""

    __tablename__ = "tiers"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    tier_id: Mapped[str] = mapped_column(ID)
    tier_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(STATE)
    token_cap: Mapped[int] = mapped_column(BigInteger)
    ci_run_cap: Mapped[int] = mapped_column(Integer)
    max_minor_issues_tolerated: Mapped[int] = mapped_column(Integer)
    max_major_issues_tolerated: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tokens_used: Mapped[int] = mapped_column(BigInteger, default=0)
    ci_runs_used: Mapped[int] = mapped_column(Integer, default=0)
    minor_issues_count: Mapped[int] = mapped_column(Integer, default=0)
    major_issues_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "tier_id"),
        UniqueConstraint("run_id", "tier_index"),
    )


class PhaseRow(Base):
    """One unit of work: its labels, caps, state and counters."""

    __tablename__ = "phases"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    tier_id: Mapped[str] = mapped_column(ID)
    phase_id: Mapped[str] = mapped_column(ID)
    phase_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    task_category: Mapped[str | None] = mapped_column(String(64), nullable=True)
    complexity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    builder_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(STATE)
    builder_attempts: Mapped[int] = mapped_column(Integer, default=0)
    tokens_used: Mapped[int] = mapped_column(BigInteger, default=0)
    minor_issues_count: Mapped[int] = mapped_column(Integer, default=0)
    major_issues_count: Mapped[int] = mapped_column(Integer, default=0)
    max_builder_attempts: Mapped[int] = mapped_column(Integer)
    max_auditor_attempts: Mapped[int] = mapped_column(Integer)
    incident_token_cap: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "phase_id"),
        UniqueConstraint("run_id", "phase_index"),
        ForeignKeyConstraint(
            ["run_id", "tier_id"], ["tiers.run_id", "tiers.tier_id"], ondelete="CASCADE"
        ),
        Index(None, "run_id", "tier_id"),
    )


class EventRow(Base):
    """One applied state change; rows are only ever inserted."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[str] = mapped_column(ID)
    from_state: Mapped[str | None] = mapped_column(STATE, nullable=True)
    to_state: Mapped[str] = mapped_column(STATE)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "run_id", "id"),
        Index(None, "run_id", "entity", "entity_id"),
    )
