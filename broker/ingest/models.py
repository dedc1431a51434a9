"""The idempotency ledger of accepted events and their routing outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow


class AcceptedEvent(Base):
    """One row per (source, id); the envelope is kept for emergency access (nödöppning): its
    clear part in ``envelope``, the child's number and ``data`` in ``sealed`` under the child's
    key (the same ciphertext as in ``events.v1``; None for a payload emptied by migration 0008)."""

    __tablename__ = "accepted_events"

    source_org: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    subject_pseudonym: Mapped[str] = mapped_column(String(100), index=True)
    type: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[dict[str, Any]]
    sealed: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)


# The table itself, for the rows of a grouped or batched publish (not the ORM's bulk path).
ACCEPTED_EVENTS = cast(Table, AcceptedEvent.__table__)


class EventRoute(Base):
    """Where an accepted event went: the router's summary of it, one row per (source, id).

    A table of its own rather than columns of ``accepted_events``: the API commits that row only
    after Kafka has acknowledged the event, so routing can be faster than the commit; an UPDATE
    of the row not yet visible (PostgreSQL) matched nothing and the event stayed "pending" for
    ever. An insert here needs no row to exist. The first summary stays (as the first delivery
    does in the feed)."""

    __tablename__ = "event_routes"

    source_org: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    recipients: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    routed_at: Mapped[datetime] = mapped_column(default=utcnow)


# The table itself, for the materializer's summaries of a batch at once.
EVENT_ROUTES = cast(Table, EventRoute.__table__)
