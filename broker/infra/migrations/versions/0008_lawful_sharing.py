"""lawful sharing: the statute on every disclosure, and review items

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:15:00

Audit records carry the statute (lagrum) a disclosure rests on and whether it is an open review
item (every nödöppning, every disclosure under a ground without an explicit provision); a feed
item carries the statute of its delivery; a consent records who withdrew it. Nullable: records and items from before have none (the
chain hashes the new fields only where present, so old records still verify).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("statute", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("review", sa.Boolean(), nullable=True))
    with op.batch_alter_table("feed_items") as batch:
        batch.add_column(sa.Column("statute", sa.String(length=300), nullable=True))
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("withdrawn_by", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("withdrawn_by")
    with op.batch_alter_table("feed_items") as batch:
        batch.drop_column("statute")
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_column("review")
        batch.drop_column("statute")
