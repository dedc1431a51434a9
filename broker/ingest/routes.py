"""``POST /v1/events`` and ``GET /v1/events/{id}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import func, select

from broker.auth.deps import AnyCaller, Publisher, StateDep
from broker.ingest import modes, service
from broker.ingest.batch import accept_batch
from broker.ingest.models import AcceptedEvent, EventRoute
from broker.web import examples
from broker.web.errors import NotFound, PayloadTooLarge
from broker.web.openapi import PROBLEMS
from broker.web.params import EventIdPath
from consumers.models import FeedItem

router = APIRouter(tags=["events"])


class AcceptedOut(BaseModel):
    id: str
    status: str


class RecipientOut(BaseModel):
    org: str
    shared: bool
    legal_ground: str | None
    categories: list[str]


class EventStatusOut(BaseModel):
    id: str
    status: str
    recipients: list[RecipientOut]


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


PUBLISH_DESCRIPTION = """Publish CloudEvents 1.0 in any of the three content modes of the
CloudEvents HTTP binding; 202 once the event is durably in Kafka (acks=all).

- **structured**: the envelope as the body (`application/cloudevents+json` or
  `application/json`).
- **binary**: the context attributes and the extensions `purpose`, `legalbasis`, `consentref`
  and `municipality` as `ce-*` headers (`ce-specversion: 1.0`, `ce-id`, `ce-source`, `ce-type`,
  `ce-subject`, …), `Content-Type: application/json` as `datacontenttype`, the data as the body.
- **batched**: `application/cloudevents-batch+json`, a JSON array of structured envelopes
  (schema `CloudEventBatch`; at most 100 events and 1 MiB, each event within 64 KiB). Each
  event is validated, made idempotent and accepted on its own; the accepted ones are in Kafka
  together before the answer: 200 with one result per event, in order (`accepted`,
  `duplicate`, or `rejected` with its problem). A batch costs one unit of the rate limit per
  event.

The same event id again answers 200 with the first answer (ids are idempotency keys per
source)."""


@router.post(
    "/v1/events",
    status_code=202,
    response_model=AcceptedOut,
    description=PUBLISH_DESCRIPTION,
    responses={
        **PROBLEMS,
        200: {
            "description": "The same event again (the first answer), or a batch's results",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/AcceptedOut"},
                            {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/BatchResult"},
                            },
                        ]
                    }
                }
            },
        },
        413: PROBLEMS[422] | {"description": "Body over 64 KiB, or a batch over its bounds"},
        415: PROBLEMS[422] | {"description": "Binary-mode data that is not JSON"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                # One media type: the structured mode's body. The batch's array and the
                # binary mode are in the description; openapi-python-client 0.29 generates
                # code that does not import (Unset undefined) for an operation with several
                # request media types.
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/CloudEvent"},
                    "example": examples.EVENT,
                },
            },
        }
    },
)
async def publish(request: Request, caller: Publisher, state: StateDep) -> Any:
    settings = state.settings
    mode = modes.mode_of(request.headers)
    if mode is modes.Mode.BATCH:
        raw = await _read_limited(request, settings.max_batch_bytes)
        bodies = modes.batch(raw, settings.max_batch_events)
        state.publish_limiter.take(caller.client_id, cost=max(1, len(bodies)))
        return JSONResponse(await accept_batch(state, caller, bodies), status_code=200)
    state.publish_limiter.take(caller.client_id)
    raw = await _read_limited(request, settings.max_body_bytes)
    body = (
        modes.binary(request.headers, raw) if mode is modes.Mode.BINARY else modes.structured(raw)
    )
    result = await service.accept(state, caller, body)
    return JSONResponse(
        {"id": result.event_id, "status": "accepted"}, status_code=202 if result.first_time else 200
    )


@router.get("/v1/events/{event_id}", response_model=EventStatusOut, responses=PROBLEMS)
async def event_status(event_id: EventIdPath, caller: AnyCaller, state: StateDep) -> Any:
    """Where the caller's own event went; anyone else's event is 404."""
    async with state.sessions() as session:
        row = await session.get(AcceptedEvent, (caller.org, event_id))
        if row is None:
            raise NotFound(f"no event {event_id!r} from your organisation")
        route = await session.get(EventRoute, (caller.org, event_id))
        recipients = route.recipients if route is not None else []
        routed = route is not None
        wanted = [r["delivery_id"] for r in recipients if r.get("delivery_id")]
        if routed and wanted:
            # "routed" means visible in every recipient's feed, not just decided.
            stored = await session.execute(
                select(func.count()).select_from(FeedItem).where(FeedItem.item_id.in_(wanted))
            )
            routed = stored.scalar_one() == len(wanted)
    return {
        "id": row.event_id,
        "status": "routed" if routed else "pending",
        "recipients": recipients,
    }
