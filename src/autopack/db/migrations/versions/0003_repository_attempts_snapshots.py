"""A run's repository, phase scope, attempts with their diffs, and snapshots

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_RUN_COLUMNS = (
    ("repo_path", sa.Text()),
    ("main_branch", sa.String(length=255)),
    ("base_commit", sa.String(length=64)),
    ("promoted_commit", sa.String(length=64)),
    ("promoted_at", sa.DateTime(timezone=True)),
    ("promoted_by", sa.String(length=64)),
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name, type_ in _RUN_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("phases") as batch:
        batch.add_column(sa.Column("scope", sa.JSON(), nullable=True))
    op.create_table(
        "attempts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("phase_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("base_commit", sa.String(length=64), nullable=False),
        sa.Column("diff", sa.LargeBinary(), nullable=False),
        sa.Column("diff_sha256", sa.String(length=64), nullable=False),
        sa.Column("diff_truncated", sa.Boolean(), nullable=False),
        sa.Column("files_changed", sa.Integer(), nullable=False),
        sa.Column("lines_changed", sa.Integer(), nullable=False),
        sa.Column("gate_status", sa.String(length=16), nullable=False),
        sa.Column("refusals", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"],
                                name=op.f("fk_attempts_run_id_phase_id_phases"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"],
                                name=op.f("fk_attempts_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        sa.UniqueConstraint("run_id", "phase_id", "number",
                            name=op.f("uq_attempts_run_id_phase_id_number")),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("phase_id", sa.String(length=128), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"],
                                name=op.f("fk_snapshots_run_id_phase_id_phases"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"],
                                name=op.f("fk_snapshots_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("run_id", "phase_id", name=op.f("uq_snapshots_run_id_phase_id")),
    )


def downgrade() -> None:
    op.drop_table("snapshots")
    op.drop_table("attempts")
    with op.batch_alter_table("phases") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("runs") as batch:
        for name, _type in reversed(_RUN_COLUMNS):
            batch.drop_column(name)
