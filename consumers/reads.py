"""What happens whenever deliveries reach their recipient: audit first, then owner notices.

A read is a ``GET`` of the feed or the child view, or a webhook push (the data leaves the broker
either way). The audit records are in Kafka before the data leaves (fail closed: no record, no
read). The first read of a delivery carrying health, social or police categories puts an access
notice in the source organisation's feed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.records import record
from broker.infra.db import utcnow
from broker.records import AuditAction
from consumers.models import FeedItem, lock_feed
from consumers.notices import ACCESS_NOTICE, needs_owner_notice, notice

# Puts audit records durably in ``audit.v1`` or raises (``AppState.emit_audit``).
AuditSink = Callable[..., Awaitable[None]]


def item_view(item: FeedItem) -> dict[str, Any]:
    """A feed item as its recipient gets it (contract section 7), in the feed and in pushes."""
    return {
        "delivery_id": item.item_id,
        "event_id": item.event_id,
        "type": item.type,
        "subject": item.subject,
        "time": item.time.isoformat().replace("+00:00", "Z"),
        "source_kind": item.source_kind,
        "purpose": item.purpose,
        "legal_ground": item.legal_ground,
        "data": item.data,
    }


async def record_reads(
    emit_audit: AuditSink,
    session: AsyncSession,
    items: list[FeedItem],
    *,
    reader_org: str,
    reader_client: str | None,
    action: AuditAction,
) -> None:
    """Audit the reads of the deliveries among ``items`` and tell their sources of the first."""
    deliveries = [i for i in items if i.source_org is not None]
    if not deliveries:
        return
    await emit_audit(
        *(
            record(
                action=action,
                outcome="ok",
                actor_org=reader_org,
                actor_client=reader_client,
                subject_pseudonym=i.subject_pseudonym,
                event_id=i.event_id,
                recipient_org=reader_org,
                legal_ground=i.legal_ground,
                purpose=i.purpose,
                categories_shared=i.categories,
                reasons=[f"delivery:{i.item_id}"],
            )
            for i in deliveries
        )
    )
    unread = [i for i in deliveries if i.first_read_at is None]
    if not unread:
        return
    if any(needs_owner_notice(i.categories) for i in unread):
        # Before the row locks below: the materializer takes the two in this order too.
        await lock_feed(session)
    now = utcnow()
    # Whoever sets first_read_at tells the source, so concurrent first reads notify once.
    first = await session.execute(
        update(FeedItem)
        .where(FeedItem.seq.in_([i.seq for i in unread]), FeedItem.first_read_at.is_(None))
        .values(first_read_at=now)
        .returning(FeedItem.seq)
        .execution_options(synchronize_session=False)
    )
    first_seqs = set(first.scalars())
    session.add_all(
        notice(
            org=item.source_org,
            type=ACCESS_NOTICE,
            event_id=item.event_id,
            subject=item.subject,
            subject_pseudonym=item.subject_pseudonym,
            data={
                "delivery_id": item.item_id,
                "event_id": item.event_id,
                "reader_org": reader_org,
                "categories": item.categories,
                "read_at": now.isoformat().replace("+00:00", "Z"),
            },
        )
        for item in unread
        if item.seq in first_seqs
        and item.source_org is not None
        and needs_owner_notice(item.categories)
    )
