"""``GET /v1/feed``: the caller organisation's deliveries and notices, in order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from broker.auth.deps import FeedReader, StateDep
from broker.infra.db import transaction
from broker.records import AuditAction
from broker.web.cursors import decode_cursor, encode_cursor
from broker.web.openapi import PROBLEMS
from consumers.models import FeedItem
from consumers.reads import item_view, opened, record_reads

router = APIRouter(tags=["feed"])


class FeedItemOut(BaseModel):
    delivery_id: str
    event_id: str | None
    type: str
    subject: str | None
    time: str
    source_kind: str | None
    purpose: str | None
    legal_ground: str | None
    data: dict[str, Any]


class FeedPage(BaseModel):
    items: list[FeedItemOut]
    next: str | None


@router.get("/v1/feed", response_model=FeedPage, responses=PROBLEMS)
async def feed(
    caller: FeedReader,
    state: StateDep,
    after: str | None = Query(
        default=None, max_length=200, description="The `next` cursor of the previous page"
    ),
    limit: int = Query(default=100, ge=1, le=500),
) -> Any:
    """The caller organisation's feed items after the cursor; every delivery read is audited."""
    after_seq = decode_cursor(after) if after else 0
    async with transaction(state.sessions) as session:
        rows = await session.execute(
            select(FeedItem)
            .where(FeedItem.org_id == caller.org, FeedItem.seq > after_seq)
            .order_by(FeedItem.seq)
            .limit(limit)
        )
        items = list(rows.scalars())
        shown = await opened(state.subject_keys, items)
        await record_reads(
            state.emit_audit,
            session,
            shown,
            reader_org=caller.org,
            reader_client=caller.client_id,
            action=AuditAction.FEED_READ,
        )
    next_cursor = encode_cursor(items[-1].seq) if items else after
    # The cursor passes items that did not open too: they never will.
    return {"items": [item_view(s) for s in shown], "next": next_cursor}
