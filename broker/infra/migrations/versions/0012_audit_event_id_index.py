"""audit_records: no index on event_id

No query reads the audit trail by event id (the search filters by child, organisation, time,
outcome, action and ground; an event's status is read from event_routes). The index cost a
quarter of PostgreSQL's CPU per audit record written: event ids are random UUIDs, so every
insert landed on a random leaf page (docs/bench/journal.md, session 13).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_records_event_id"))


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_records_event_id"), ["event_id"], unique=False)
