"""``GET /v1/feed``: the caller organisation's deliveries and notices, in order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from broker.auth.deps import FeedReader, StateDep
from broker.infra.db import transaction
from broker.records import AuditAction
from broker.web.cursors import decode_cursor, encode_cursor
from broker.web.openapi import PROBLEMS
from broker.web.params import CURSOR
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
    statute: str | None = Field(
        default=None, description="The statute (lagrum) the disclosure rests on"
    )
    data: dict[str, Any]


class FeedPage(BaseModel):
    items: list[FeedItemOut]
    next: str | None


CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
FEED_DESCRIPTION = """The caller organisation's feed items after the cursor; every delivery read
is audited.

With `Accept: application/cloudevents-batch+json` the same items come as a CloudEvents 1.0
batch, for any CloudEvents SDK: `id` is the delivery id, `type`, `subject`, `time` and `data`
as in the JSON form, and the extensions `eventid`, `sourcekind`, `purpose` and `legalground`.
The next page's cursor is then the `Samsyn-Next-Cursor` header."""


def as_cloudevent(item: dict[str, Any]) -> dict[str, Any]:
    """A feed item (``item_view``) as a structured CloudEvent. The source is the feed, not the
    publishing organisation, which the recipient does not learn from the JSON form either."""
    event = {
        "specversion": "1.0",
        "id": item["delivery_id"],
        "source": "/v1/feed",
        "type": item["type"],
        "time": item["time"],
        "datacontenttype": "application/json",
        "subject": item["subject"],
        "eventid": item["event_id"],
        "sourcekind": item["source_kind"],
        "purpose": item["purpose"],
        "legalground": item["legal_ground"],
        "data": item["data"],
    }
    # An absent attribute is left out, not null (CloudEvents has no null attribute values).
    return {name: value for name, value in event.items() if value is not None}


@router.get(
    "/v1/feed",
    response_model=FeedPage,
    description=FEED_DESCRIPTION,
    responses={
        **PROBLEMS,
        200: {
            "description": "The items, as JSON (default) or as a CloudEvents batch",
            "content": {
                CLOUDEVENTS_BATCH: {
                    "schema": {"type": "array", "items": {"type": "object"}},
                }
            },
        },
    },
)
async def feed(
    request: Request,
    caller: FeedReader,
    state: StateDep,
    after: str | None = Query(
        default=None,
        max_length=200,
        description="The `next` cursor of the previous page",
        json_schema_extra=CURSOR,
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
    views = [item_view(s) for s in shown]
    if _wants_cloudevents(request.headers.get("accept", "")):
        return JSONResponse(
            [as_cloudevent(v) for v in views],
            media_type=CLOUDEVENTS_BATCH,
            headers={"Samsyn-Next-Cursor": next_cursor} if next_cursor else None,
        )
    return {"items": views, "next": next_cursor}


def _wants_cloudevents(accept: str) -> bool:
    """True when the Accept header names the CloudEvents batch type (JSON stays the default)."""
    return any(
        part.split(";", 1)[0].strip().lower() == CLOUDEVENTS_BATCH for part in accept.split(",")
    )
