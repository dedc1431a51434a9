"""subject_keys: each child's data key, wrapped by a key-encryption key; payloads sealed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:20:00

accepted_events and feed_items keep the child's number and ``data`` only as ciphertext under the
child's key, in a new ``sealed`` column. Rows written before this revision held them in clear, and
a migration cannot encrypt them (it holds no KEK): their personal fields are emptied, so those
feed items and events read as nothing. There was no production deployment before it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broker.infra.db

revision = "0009"
down_revision = "0008"
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
    with op.batch_alter_table("accepted_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.Text(), nullable=True))
    accepted = sa.table(
        "accepted_events",
        sa.column("source_org", sa.String),
        sa.column("event_id", sa.String),
        sa.column("envelope", sa.JSON),
    )
    bind = op.get_bind()
    for source_org, event_id, envelope in bind.execute(
        sa.select(accepted.c.source_org, accepted.c.event_id, accepted.c.envelope)
    ).all():
        clear = {k: v for k, v in (envelope or {}).items() if k not in ("subject", "data")}
        bind.execute(
            accepted.update()
            .where(accepted.c.source_org == source_org, accepted.c.event_id == event_id)
            .values(envelope=clear)
        )
    with op.batch_alter_table("feed_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.Text(), nullable=True))
        batch_op.drop_column("subject")
        batch_op.drop_column("data")


def downgrade() -> None:
    # The emptied payloads do not come back; the columns do, empty.
    with op.batch_alter_table("feed_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("subject", sa.String(length=12), nullable=True))
        batch_op.drop_column("sealed")
    with op.batch_alter_table("accepted_events", schema=None) as batch_op:
        batch_op.drop_column("sealed")
    with op.batch_alter_table("subject_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_keys_kek_id"))
    op.drop_table("subject_keys")
