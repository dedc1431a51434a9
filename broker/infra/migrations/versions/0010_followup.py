"""followup: counts without children in them, and each child's sealed ledger

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broker.infra.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "followup_counts",
        sa.Column("measure", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=9), nullable=False),
        sa.Column("area", sa.String(length=4), nullable=False),
        sa.Column("dim", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("children", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "measure", "period", "area", "dim", "value", name=op.f("pk_followup_counts")
        ),
    )
    op.create_table(
        "followup_ledgers",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", broker.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", broker.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_followup_ledgers")),
    )
    op.create_index(
        op.f("ix_followup_ledgers_expires_at"), "followup_ledgers", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_followup_ledgers_expires_at"), table_name="followup_ledgers")
    op.drop_table("followup_ledgers")
    op.drop_table("followup_counts")
