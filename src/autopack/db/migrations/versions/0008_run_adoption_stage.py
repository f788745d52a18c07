"""A run's adoption stage (SPEC §11), from its strategy: what its tiers and promotion enforce

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("adoption_stage", sa.Integer(), nullable=False,
                                   server_default="2"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("adoption_stage")
