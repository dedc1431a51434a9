"""subject_keys.log_offset: the offset in keys.v1 of the record that last changed each key

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subject_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_offset", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subject_keys", schema=None) as batch_op:
        batch_op.drop_column("log_offset")
