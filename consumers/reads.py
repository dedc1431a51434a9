"""What happens whenever deliveries reach their recipient: audit first, then owner notices.

A read is a ``GET`` of the feed or the child view, or a webhook push (the data leaves the broker
either way). The audit records are in Kafka before the data leaves (fail closed: no record, no
read). The first read of a delivery carrying health, social or police categories puts an access
notice in the source organisation's feed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.records import record
from broker.infra.db import utcnow
from broker.privacy.aead import Unreadable
from broker.privacy.keyring import SubjectKeys
from broker.privacy.payloads import Personal, feed_ad, open_personal
from broker.records import AuditAction
from consumers.models import FeedItem, lock_feed
from consumers.notices import ACCESS_NOTICE, needs_owner_notice, notice

# Puts audit records durably in ``audit.v1`` or raises (``AppState.emit_audit``).
AuditSink = Callable[..., Awaitable[None]]


@dataclass(frozen=True)
class Opened:
    """A feed item with its sealed part opened, and the key that opened it."""

    item: FeedItem
    personal: Personal
    key: AESGCM


async def opened(keys: SubjectKeys, items: list[FeedItem]) -> list[Opened]:
    """The items whose sealed part opens, in order. The others (their child erased, its key
    destroyed) are left out: nothing of an erased child is shown, pushed or counted as read."""
    found = await keys.for_reading({i.subject_pseudonym for i in items if i.subject_pseudonym})
    out = []
    for item in items:
        key = found.get(item.subject_pseudonym or "")
        try:
            personal = open_personal(key, item.sealed, feed_ad(item.item_id))
        except Unreadable:
            continue
        assert key is not None  # it opened
        out.append(Opened(item, personal, key))
    return out


def item_view(shown: Opened) -> dict[str, Any]:
    """A feed item as its recipient gets it (contract section 7), in the feed and in pushes."""
    item = shown.item
    return {
        "delivery_id": item.item_id,
        "event_id": item.event_id,
        "type": item.type,
        "subject": shown.personal.subject,
        "time": item.time.isoformat().replace("+00:00", "Z"),
        "source_kind": item.source_kind,
        "purpose": item.purpose,
        "legal_ground": item.legal_ground,
        "data": shown.personal.data,
    }


async def record_reads(
    emit_audit: AuditSink,
    session: AsyncSession,
    shown: list[Opened],
    *,
    reader_org: str,
    reader_client: str | None,
    action: AuditAction,
) -> None:
    """Audit the reads of the deliveries among ``shown`` and tell their sources of the first."""
    deliveries = [s for s in shown if s.item.source_org is not None]
    if not deliveries:
        return
    await emit_audit(
        *(
            record(
                action=action,
                outcome="ok",
                actor_org=reader_org,
                actor_client=reader_client,
                subject_pseudonym=s.item.subject_pseudonym,
                event_id=s.item.event_id,
                recipient_org=reader_org,
                legal_ground=s.item.legal_ground,
                purpose=s.item.purpose,
                categories_shared=s.item.categories,
                reasons=[f"delivery:{s.item.item_id}"],
            )
            for s in deliveries
        )
    )
    unread = [s for s in deliveries if s.item.first_read_at is None]
    if not unread:
        return
    if any(needs_owner_notice(s.item.categories) for s in unread):
        # Before the row locks below: the materializer takes the two in this order too.
        await lock_feed(session)
    now = utcnow()
    # Whoever sets first_read_at tells the source, so concurrent first reads notify once.
    first = await session.execute(
        update(FeedItem)
        .where(FeedItem.seq.in_([s.item.seq for s in unread]), FeedItem.first_read_at.is_(None))
        .values(first_read_at=now)
        .returning(FeedItem.seq)
        .execution_options(synchronize_session=False)
    )
    first_seqs = set(first.scalars())
    session.add_all(
        notice(
            key=s.key,
            org=s.item.source_org,
            type=ACCESS_NOTICE,
            event_id=s.item.event_id,
            subject=s.personal.subject,
            subject_pseudonym=s.item.subject_pseudonym,
            data={
                "delivery_id": s.item.item_id,
                "event_id": s.item.event_id,
                "reader_org": reader_org,
                "categories": s.item.categories,
                "read_at": now.isoformat().replace("+00:00", "Z"),
            },
        )
        for s in unread
        if s.item.seq in first_seqs
        and s.item.source_org is not None
        and s.item.subject_pseudonym is not None
        and needs_owner_notice(s.item.categories)
    )
