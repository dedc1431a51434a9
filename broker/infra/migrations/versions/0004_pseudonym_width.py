"""subject_pseudonym columns wide enough for any pseudonym (key id up to 32 + ':' + 64 hex)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 11:20:00

String(80) held a pseudonym only while its key id had at most 15 characters; the generated ids
(``pseudonym-<8 hex>``, 18) already overflowed it, so on PostgreSQL every event, consent and
relationship failed with 500 (SQLite does not enforce lengths).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = {
    "accepted_events": False,
    "audit_records": True,
    "consents": False,
    "feed_items": True,
    "relationships": False,
}


def upgrade() -> None:
    for table, nullable in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "subject_pseudonym",
                existing_type=sa.String(length=80),
                type_=sa.String(length=100),
                existing_nullable=nullable,
            )


def downgrade() -> None:
    for table, nullable in TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "subject_pseudonym",
                existing_type=sa.String(length=100),
                type_=sa.String(length=80),
                existing_nullable=nullable,
            )
