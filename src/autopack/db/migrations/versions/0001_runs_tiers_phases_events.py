"""Runs, tiers, phases and the event log

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("safety_profile", sa.String(length=32), nullable=False),
        sa.Column("run_scope", sa.String(length=32), nullable=False),
        sa.Column("token_cap", sa.BigInteger(), nullable=False),
        sa.Column("max_phases", sa.Integer(), nullable=False),
        sa.Column("max_duration_minutes", sa.Float(), nullable=False),
        sa.Column("max_minor_issues_total", sa.Integer(), nullable=False),
        sa.Column("tokens_used", sa.BigInteger(), nullable=False),
        sa.Column("ci_runs_used", sa.Integer(), nullable=False),
        sa.Column("minor_issues_count", sa.Integer(), nullable=False),
        sa.Column("major_issues_count", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runs_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_runs_state"), ["state"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("from_state", sa.String(length=64), nullable=True),
        sa.Column("to_state", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_run_id_entity_entity_id"),
            ["run_id", "entity", "entity_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_events_run_id_id"), ["run_id", "id"], unique=False)

    op.create_table(
        "tiers",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("tier_id", sa.String(length=128), nullable=False),
        sa.Column("tier_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("token_cap", sa.BigInteger(), nullable=False),
        sa.Column("ci_run_cap", sa.Integer(), nullable=False),
        sa.Column("max_minor_issues_tolerated", sa.Integer(), nullable=False),
        sa.Column("max_major_issues_tolerated", sa.Integer(), nullable=True),
        sa.Column("tokens_used", sa.BigInteger(), nullable=False),
        sa.Column("ci_runs_used", sa.Integer(), nullable=False),
        sa.Column("minor_issues_count", sa.Integer(), nullable=False),
        sa.Column("major_issues_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_tiers_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tiers")),
        sa.UniqueConstraint("run_id", "tier_id", name=op.f("uq_tiers_run_id_tier_id")),
        sa.UniqueConstraint("run_id", "tier_index", name=op.f("uq_tiers_run_id_tier_index")),
    )
    op.create_table(
        "phases",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("tier_id", sa.String(length=128), nullable=False),
        sa.Column("phase_id", sa.String(length=128), nullable=False),
        sa.Column("phase_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("task_category", sa.String(length=64), nullable=True),
        sa.Column("complexity", sa.String(length=16), nullable=True),
        sa.Column("builder_mode", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("builder_attempts", sa.Integer(), nullable=False),
        sa.Column("tokens_used", sa.BigInteger(), nullable=False),
        sa.Column("minor_issues_count", sa.Integer(), nullable=False),
        sa.Column("major_issues_count", sa.Integer(), nullable=False),
        sa.Column("max_builder_attempts", sa.Integer(), nullable=False),
        sa.Column("max_auditor_attempts", sa.Integer(), nullable=False),
        sa.Column("incident_token_cap", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id", "tier_id"],
            ["tiers.run_id", "tiers.tier_id"],
            name=op.f("fk_phases_run_id_tier_id_tiers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_phases_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phases")),
        sa.UniqueConstraint("run_id", "phase_id", name=op.f("uq_phases_run_id_phase_id")),
        sa.UniqueConstraint("run_id", "phase_index", name=op.f("uq_phases_run_id_phase_index")),
    )
    with op.batch_alter_table("phases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_phases_run_id_tier_id"), ["run_id", "tier_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("phases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phases_run_id_tier_id"))

    op.drop_table("phases")
    op.drop_table("tiers")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_run_id_id"))
        batch_op.drop_index(batch_op.f("ix_events_run_id_entity_entity_id"))

    op.drop_table("events")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_state"))
        batch_op.drop_index(batch_op.f("ix_runs_created_at"))

    op.drop_table("runs")
