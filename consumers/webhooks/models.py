"""A webhook per organisation, and the push state of each feed item it is to receive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow


class Webhook(Base):
    """Where an organisation wants its feed items pushed.

    The signing secret is kept as given out, not hashed or encrypted: the sender needs it to
    sign every push (HMAC). It is shown to the organisation once, when it registers, and is
    never returned again; re-registering replaces it. Protect it like the database itself.
    ``after_seq`` is the organisation's feed position up to which items have been queued.
    """

    __tablename__ = "webhooks"

    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    after_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookAttempt(Base):
    """The push of one feed item: pending until a 2xx answer (``delivered_at``) or until the
    attempts run out (``failed_at``). The feed item's id is the ``Samsyn-Delivery-Id``."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_due", "delivered_at", "failed_at", "due_at"),)

    item_id: Mapped[str] = mapped_column(ForeignKey("feed_items.item_id"), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("webhooks.org_id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
