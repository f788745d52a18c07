"""SQLAlchemy 2 models: runs, tiers, phases and the append-only event log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
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
    project_id: Mapped[str] = mapped_column(ID, default="default")
    # 1 for a project's first run, 2 for its second...: the clock issues age by.
    project_run_seq: Mapped[int] = mapped_column(Integer, default=1)
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
    debt_status: Mapped[str] = mapped_column(String(32), default="clean")
    adoption_stage: Mapped[int] = mapped_column(Integer, default=2)
    """SPEC §11, from the run's strategy: 0 and 1 enforce no tier caps in promotion."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Bumped by every change to the run, its tiers or its phases (an ETag for reads).
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The target repository, when the run has one: its integration branch starts at
    # base_commit, the tip of main_branch when the run was created.
    repo_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    main_branch: Mapped[str | None] = mapped_column(String(255), nullable=True)
    base_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    promoted_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    promoted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index(None, "created_at"),
        Index(None, "state"),
        Index(None, "project_id", "project_run_seq"),
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
    issue_state: Mapped[str] = mapped_column(String(32), default="no_issues")
    max_builder_attempts: Mapped[int] = mapped_column(Integer)
    max_auditor_attempts: Mapped[int] = mapped_column(Integer)
    incident_token_cap: Mapped[int] = mapped_column(BigInteger)
    # Paths the phase may change (directory prefixes, files, globs); null: the whole repo.
    scope: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
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


class AttemptRow(Base):
    """One builder or auditor attempt at a phase: its canonical diff and gate outcome."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    phase_id: Mapped[str] = mapped_column(ID)
    number: Mapped[int] = mapped_column(Integer)
    base_commit: Mapped[str] = mapped_column(String(64))
    diff: Mapped[bytes] = mapped_column(LargeBinary)
    diff_sha256: Mapped[str] = mapped_column(String(64))
    diff_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    files_changed: Mapped[int] = mapped_column(Integer)
    lines_changed: Mapped[int] = mapped_column(Integer)
    # pending (stored, not yet checked), passed, refused
    gate_status: Mapped[str] = mapped_column(String(16))
    refusals: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(16), server_default="builder")  # or auditor
    # pending (in flight), ready (green and approved: the snapshot may be taken), failed
    outcome: Mapped[str] = mapped_column(String(16), server_default="pending")
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        UniqueConstraint("run_id", "phase_id", "number"),
        ForeignKeyConstraint(
            ["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"], ondelete="CASCADE"
        ),
    )


class SnapshotRow(Base):
    """A completed phase's commit on the integration branch and its tag."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    phase_id: Mapped[str] = mapped_column(ID)
    attempt_number: Mapped[int] = mapped_column(Integer)
    commit: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "phase_id"),
        ForeignKeyConstraint(
            ["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"], ondelete="CASCADE"
        ),
    )


class StrategyRow(Base):
    """A run's compiled strategy, frozen when the run is created (insert-only)."""

    __tablename__ = "strategies"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"),
                                        primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewRow(Base):
    """One Auditor call on a phase: why it was asked, which attempt it saw, its verdict."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    phase_id: Mapped[str] = mapped_column(ID)
    number: Mapped[int] = mapped_column(Integer)
    attempt_number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    verdict: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text)
    patch: Mapped[str | None] = mapped_column(Text, nullable=True)
    tokens: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "phase_id", "number"),
        ForeignKeyConstraint(
            ["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"], ondelete="CASCADE"
        ),
    )


class CommandRunRow(Base):
    """One command the Verifier ran for an attempt (a static check or a CI command)."""

    __tablename__ = "command_runs"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    phase_id: Mapped[str] = mapped_column(ID)
    attempt_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # static_check | ci
    ci_attempt: Mapped[int] = mapped_column(Integer)
    command: Mapped[str] = mapped_column(Text)
    exit_code: Mapped[int] = mapped_column(Integer)
    timed_out: Mapped[bool] = mapped_column(Boolean)
    seconds: Mapped[float] = mapped_column(Float)
    log_path: Mapped[str] = mapped_column(Text)
    output_tail: Mapped[str] = mapped_column(Text)
    output_bytes: Mapped[int] = mapped_column(BigInteger)
    log_truncated: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"], ondelete="CASCADE"
        ),
        Index(None, "run_id", "phase_id", "attempt_number"),
    )


class RunInputsRow(Base):
    """What a run was started with beyond its spec (builder, auditor, the plan's phase
    commands and patches), so `autopack resume` can continue it."""

    __tablename__ = "run_inputs"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"),
                                        primary_key=True)
    document: Mapped[str] = mapped_column(Text)


class ProjectRow(Base):
    """A project: the scope of an issue backlog; counts its runs."""

    __tablename__ = "projects"

    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueRow(Base):
    """One logical problem in one run (run x issue_key), however often it was seen."""

    __tablename__ = "issues"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    issue_key: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    effective_severity: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    expected_fail: Mapped[bool] = mapped_column(Boolean, default=False)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=0)
    first_phase_index: Mapped[int] = mapped_column(Integer)
    last_phase_index: Mapped[int] = mapped_column(Integer)
    evidence_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("run_id", "issue_key"),)


class IssuePhaseRow(Base):
    """Where a run's issue was seen: one row per phase, with that phase's occurrences."""

    __tablename__ = "issue_phases"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    issue_key: Mapped[str] = mapped_column(String(200))
    phase_id: Mapped[str] = mapped_column(ID)
    tier_id: Mapped[str] = mapped_column(ID)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=0)
    evidence_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "issue_key", "phase_id"),
        ForeignKeyConstraint(
            ["run_id", "issue_key"], ["issues.run_id", "issues.issue_key"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"], ondelete="CASCADE"
        ),
        Index(None, "run_id", "phase_id"),
        Index(None, "run_id", "tier_id"),
    )


class BacklogRow(Base):
    """One logical problem of a project across its runs."""

    __tablename__ = "backlog"

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id",
                                                       ondelete="CASCADE"))
    issue_key: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    base_severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), default="open")
    seen_in_runs: Mapped[int] = mapped_column(Integer, default=0)
    seen_in_tiers: Mapped[int] = mapped_column(Integer, default=0)
    occurrence_count: Mapped[int] = mapped_column(Integer, default=0)
    age_in_runs: Mapped[int] = mapped_column(Integer, default=1)
    age_in_tiers: Mapped[int] = mapped_column(Integer, default=0)
    # project_run_seq of the run that (re)opened the issue and of the last run that saw it
    opened_run_seq: Mapped[int] = mapped_column(Integer)
    last_seen_run_seq: Mapped[int] = mapped_column(Integer)
    first_seen_run_id: Mapped[str] = mapped_column(ID)
    last_seen_run_id: Mapped[str] = mapped_column(ID)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("project_id", "issue_key"),
        Index(None, "project_id", "status"),
    )
