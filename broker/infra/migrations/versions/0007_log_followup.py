"""log follow-up: summary tables of the chain for the console's overview, review queue,
samples and flags

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:30:00

The tables are filled by the sealer: at its next start it takes in the records already sealed
(followup_state.projected_seq starts at none), then keeps them in step as it seals. Reads of one
organisation in a month (a sample's population) are found through a new index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broker.infra.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org", sa.String(length=63), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("legal_ground", sa.String(length=40), nullable=False),
        sa.Column("off_hours", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "org",
            "side",
            "action",
            "outcome",
            "legal_ground",
            "off_hours",
            name=op.f("pk_audit_daily"),
        ),
    )
    op.create_table(
        "audit_daily_children",
        sa.Column("org", sa.String(length=63), nullable=False),
        sa.Column("subject_pseudonym", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org", "subject_pseudonym", "day", name=op.f("pk_audit_daily_children")
        ),
    )
    op.create_table(
        "audit_daily_readers",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org", sa.String(length=63), nullable=False),
        sa.Column("children", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "org", name=op.f("pk_audit_daily_readers")),
    )
    op.create_table(
        "review_items",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("time", broker.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor_org", sa.String(length=63), nullable=True),
        sa.Column("recipient_org", sa.String(length=63), nullable=True),
        sa.Column("subject_pseudonym", sa.String(length=100), nullable=True),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("legal_ground", sa.String(length=40), nullable=True),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", broker.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verdict_seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_review_items")),
    )
    op.create_index("ix_review_items_open", "review_items", ["verdict", "time"])
    op.create_index(op.f("ix_review_items_time"), "review_items", ["time"])
    op.create_index(op.f("ix_review_items_actor_org"), "review_items", ["actor_org"])
    op.create_table(
        "review_samples",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("org", sa.String(length=63), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("read_seqs", sa.JSON(), nullable=False),
        sa.Column("drawn_by", sa.String(length=64), nullable=True),
        sa.Column("drawn_at", broker.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("reviewed_by", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", broker.infra.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("verdict_seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_samples")),
        sa.UniqueConstraint("seq", name=op.f("uq_review_samples_seq")),
    )
    op.create_index("ix_review_samples_org_month", "review_samples", ["org", "month"])
    op.create_table(
        "followup_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("projected_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_state")),
    )
    op.create_index("ix_audit_actor_action_time", "audit_records", ["actor_org", "action", "time"])


def downgrade() -> None:
    op.drop_index("ix_audit_actor_action_time", table_name="audit_records")
    op.drop_table("followup_state")
    op.drop_table("review_samples")
    op.drop_table("review_items")
    op.drop_table("audit_daily_readers")
    op.drop_table("audit_daily_children")
    op.drop_table("audit_daily")
