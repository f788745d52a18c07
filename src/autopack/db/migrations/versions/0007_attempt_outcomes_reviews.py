"""Attempt authors and outcomes, and the Auditor's reviews

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("author", sa.String(length=16), nullable=False,
                                   server_default="builder"))
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=False,
                                   server_default="pending"))
        batch.add_column(sa.Column("failure", sa.Text(), nullable=True))
    op.create_table(
        "reviews",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=128), nullable=False),
        sa.Column("phase_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("patch", sa.Text(), nullable=True),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id", "phase_id"], ["phases.run_id", "phases.phase_id"],
                                name=op.f("fk_reviews_run_id_phase_id_phases"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"],
                                name=op.f("fk_reviews_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("run_id", "phase_id", "number",
                            name=op.f("uq_reviews_run_id_phase_id_number")),
    )


def downgrade() -> None:
    op.drop_table("reviews")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("failure")
        batch.drop_column("outcome")
        batch.drop_column("author")
