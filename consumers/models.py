"""The read model: every organisation's feed items (deliveries and notices), in order."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Index, Integer, String, Table, Text, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow


class FeedItem(Base):
    """A delivery (an allowed slice of one event) or a notice, as its recipient sees it.

    ``seq`` orders an organisation's feed and backs its cursor. The child's number and the
    item's ``data`` are only in ``sealed``, under the child's key (``broker/privacy/payloads.py``);
    None where there is nothing to read (a payload emptied by migration 0008).
    """

    __tablename__ = "feed_items"
    __table_args__ = (
        Index("ix_feed_items_org_seq", "org_id", "seq"),
        Index("ix_feed_items_org_subject", "org_id", "subject_pseudonym"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(36), unique=True)
    org_id: Mapped[str] = mapped_column(String(63))
    type: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[str | None] = mapped_column(String(128))
    source_org: Mapped[str | None] = mapped_column(String(63))
    source_kind: Mapped[str | None] = mapped_column(String(32))
    subject_pseudonym: Mapped[str | None] = mapped_column(String(100))
    time: Mapped[datetime]
    purpose: Mapped[str | None] = mapped_column(String(40))
    legal_ground: Mapped[str | None] = mapped_column(String(40))
    statute: Mapped[str | None] = mapped_column(String(300))
    consent_id: Mapped[str | None] = mapped_column(String(36), index=True)
    categories: Mapped[list[str]]
    sealed: Mapped[str | None] = mapped_column(Text)
    withdrawal_notified: Mapped[bool] = mapped_column(default=False)
    first_read_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The table itself, for the materializer's many rows at once (not the ORM's bulk path).
FEED_ITEMS = cast(Table, FeedItem.__table__)

# The PostgreSQL advisory lock that every transaction adding feed items holds until it commits.
FEED_WRITE_LOCK = 0x53414D53


async def lock_feed(session: AsyncSession) -> None:
    """Serialise the transactions that add feed items, from before their first insert to commit.

    On PostgreSQL ``seq`` comes from a sequence: taken at insert, visible at commit. Two writers
    (the materializer, a read that adds an owner notice) could commit out of order, and a reader
    whose cursor had passed the later ``seq`` would never see the earlier item. With this lock
    ``seq`` order is commit order, so a cursor never skips an item. SQLite serialises writers by
    itself. Call it before adding the items (a query autoflushes pending inserts).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEED_WRITE_LOCK})
