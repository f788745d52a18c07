"""Issues, issue phases, projects and the backlog

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_projects")),
    )
    op.create_table(
        "backlog",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=128), nullable=False),
        sa.Column("issue_key", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("base_severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("seen_in_runs", sa.Integer(), nullable=False),
        sa.Column("seen_in_tiers", sa.Integer(), nullable=False),
        sa.Column("occurrence_count", sa.Integer(), nullable=False),
        sa.Column("age_in_runs", sa.Integer(), nullable=False),
        sa.Column("age_in_tiers", sa.Integer(), nullable=False),
        sa.Column("opened_run_seq", sa.Integer(), nullable=False),
        sa.Column("last_seen_run_seq", sa.Integer(), nullable=False),
        sa.Column("first_seen_run_id", sa.String(length=128), nullable=False),
        sa.Column("last_seen_run_id", sa.String(length=128), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name=op.f("fk_backlog_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backlog")),
        sa.UniqueConstraint(
            "project_id", "issue_key", name=op.f("uq_backlog_project_id_issue_key")
        ),
    )
    with op.batch_alter_table("backlog", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_backlog_project_id_status"), ["project_id", "status"], unique=False
        )

    op.create_table(
        "issues",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("issue_key", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("effective_severity", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("expected_fail", sa.Boolean(), nullable=False),
        sa.Column("occurrence_count", sa.Integer(), nullable=False),
        sa.Column("first_phase_index", sa.Integer(), nullable=False),
        sa.Column("last_phase_index", sa.Integer(), nullable=False),
        sa.Column("evidence_refs", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_issues_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
        sa.UniqueConstraint("run_id", "issue_key", name=op.f("uq_issues_run_id_issue_key")),
    )
    op.create_table(
        "issue_phases",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("issue_key", sa.String(length=200), nullable=False),
        sa.Column("phase_id", sa.String(length=128), nullable=False),
        sa.Column("tier_id", sa.String(length=128), nullable=False),
        sa.Column("occurrence_count", sa.Integer(), nullable=False),
        sa.Column("evidence_refs", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id", "issue_key"],
            ["issues.run_id", "issues.issue_key"],
            name=op.f("fk_issue_phases_run_id_issue_key_issues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id", "phase_id"],
            ["phases.run_id", "phases.phase_id"],
            name=op.f("fk_issue_phases_run_id_phase_id_phases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name=op.f("fk_issue_phases_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_phases")),
        sa.UniqueConstraint(
            "run_id",
            "issue_key",
            "phase_id",
            name=op.f("uq_issue_phases_run_id_issue_key_phase_id"),
        ),
    )
    with op.batch_alter_table("issue_phases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_issue_phases_run_id_phase_id"), ["run_id", "phase_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_issue_phases_run_id_tier_id"), ["run_id", "tier_id"], unique=False
        )

    with op.batch_alter_table("phases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "issue_state", sa.String(length=32), nullable=False, server_default="no_issues"
            )
        )

    with op.batch_alter_table("runs", schema=None) as batch_op:
        # Runs made before projects existed belong to the default project.
        batch_op.add_column(
            sa.Column("project_id", sa.String(length=128), nullable=False, server_default="default")
        )
        batch_op.add_column(
            sa.Column("project_run_seq", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column("debt_status", sa.String(length=32), nullable=False, server_default="clean")
        )
        batch_op.create_index(
            batch_op.f("ix_runs_project_id_project_run_seq"),
            ["project_id", "project_run_seq"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_project_id_project_run_seq"))
        batch_op.drop_column("debt_status")
        batch_op.drop_column("project_run_seq")
        batch_op.drop_column("project_id")

    with op.batch_alter_table("phases", schema=None) as batch_op:
        batch_op.drop_column("issue_state")

    with op.batch_alter_table("issue_phases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issue_phases_run_id_tier_id"))
        batch_op.drop_index(batch_op.f("ix_issue_phases_run_id_phase_id"))

    op.drop_table("issue_phases")
    op.drop_table("issues")
    with op.batch_alter_table("backlog", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backlog_project_id_status"))

    op.drop_table("backlog")
    op.drop_table("projects")
