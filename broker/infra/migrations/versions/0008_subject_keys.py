"""subject_keys: each child's data key, wrapped by a key-encryption key

Revision ID: 0008_subject_keys
Revises: 0005
Create Date: 2026-12-03 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broker.infra.db

revision = "0008_subject_keys"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subject_keys",
        sa.Column("pseudonym", sa.String(length=97), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", broker.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("shredded_at", broker.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_subject_keys")),
    )
    with op.batch_alter_table("subject_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subject_keys_kek_id"), ["kek_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subject_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_keys_kek_id"))
    op.drop_table("subject_keys")
