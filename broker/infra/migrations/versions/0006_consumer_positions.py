"""consumer_positions: each read-side consumer's next offsets, beside the rows it wrote

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:30:00

The materializer and the sealer commit their positions in the same SQL transaction as their
rows, so a database restored from a backup resumes each of them where the backup ends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consumer_positions",
        sa.Column("group_id", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "topic", "partition", name=op.f("pk_consumer_positions")
        ),
    )


def downgrade() -> None:
    op.drop_table("consumer_positions")
