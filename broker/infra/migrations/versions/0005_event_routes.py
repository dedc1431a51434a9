"""event_routes: where an accepted event went, in a table of its own

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 11:45:00

The materializer used to UPDATE accepted_events.routed_at/recipients. The API commits that row
only after Kafka has acknowledged the event, so on a busy PostgreSQL the routing summary could
arrive first: the UPDATE matched nothing and the event stayed "pending" for ever (the fault suite
found two such events in 300). The summary now has its own table, which an insert fills whether
or not the accepted_events row is visible yet. Existing summaries are copied over.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broker.infra.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_routes",
        sa.Column("source_org", sa.String(length=63), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("routed_at", broker.infra.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_org", "event_id", name=op.f("pk_event_routes")),
    )
    op.execute(
        "INSERT INTO event_routes (source_org, event_id, recipients, routed_at) "
        "SELECT source_org, event_id, recipients, routed_at FROM accepted_events "
        "WHERE routed_at IS NOT NULL AND recipients IS NOT NULL"
    )
    with op.batch_alter_table("accepted_events", schema=None) as batch_op:
        batch_op.drop_column("recipients")
        batch_op.drop_column("routed_at")


def downgrade() -> None:
    with op.batch_alter_table("accepted_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("routed_at", broker.infra.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("recipients", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE accepted_events SET routed_at = (SELECT r.routed_at FROM event_routes r "
        "WHERE r.source_org = accepted_events.source_org AND r.event_id = accepted_events.event_id), "
        "recipients = (SELECT r.recipients FROM event_routes r "
        "WHERE r.source_org = accepted_events.source_org AND r.event_id = accepted_events.event_id)"
    )
    op.drop_table("event_routes")
