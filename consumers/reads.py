"""What happens whenever an organisation reads deliveries: audit first, then owner notices.

The audit records are in Kafka before the data leaves (fail closed: no record, no read). The first
read of a delivery carrying health, social or police categories puts an access notice in the
source organisation's feed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.records import record
from broker.auth.tokens import Caller
from broker.db import utcnow
from broker.state import AppState
from consumers.models import FeedItem
from consumers.notices import ACCESS_NOTICE, needs_owner_notice, notice


def item_view(item: FeedItem) -> dict[str, Any]:
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
    state: AppState,
    session: AsyncSession,
    caller: Caller,
    items: list[FeedItem],
    *,
    action: str,
) -> None:
    deliveries = [i for i in items if i.source_org is not None]
    if not deliveries:
        return
    await state.emit_audit(
        *(
            record(
                action=action,
                outcome="ok",
                actor_org=caller.org,
                actor_client=caller.client_id,
                subject_pseudonym=i.subject_pseudonym,
                event_id=i.event_id,
                recipient_org=caller.org,
                legal_ground=i.legal_ground,
                purpose=i.purpose,
                categories_shared=i.categories,
                reasons=[f"delivery:{i.item_id}"],
            )
            for i in deliveries
        )
    )
    now = utcnow()
    for item in deliveries:
        if item.first_read_at is not None:
            continue
        item.first_read_at = now
        if needs_owner_notice(item.categories) and item.source_org:
            session.add(
                notice(
                    org=item.source_org,
                    type=ACCESS_NOTICE,
                    event_id=item.event_id,
                    subject=item.subject,
                    subject_pseudonym=item.subject_pseudonym,
                    data={
                        "delivery_id": item.item_id,
                        "event_id": item.event_id,
                        "reader_org": caller.org,
                        "categories": item.categories,
                        "read_at": now.isoformat().replace("+00:00", "Z"),
                    },
                )
            )
