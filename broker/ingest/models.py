"""The idempotency ledger of accepted events and their routing outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.db import Base, utcnow


class AcceptedEvent(Base):
    """One row per (source, id); the envelope is kept for emergency access (nödöppning)."""

    __tablename__ = "accepted_events"

    source_org: Mapped[str] = mapped_column(String(63), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    subject_pseudonym: Mapped[str] = mapped_column(String(100), index=True)
    type: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[dict[str, Any]]
    accepted_at: Mapped[datetime] = mapped_column(default=utcnow)
    routed_at: Mapped[datetime | None]
    recipients: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
