"""Remove feed items and accepted events from the database, with what hangs on them.

Shared by gallring (rows past their retention) and shredding (every row of one child). Webhook
attempts go with their feed item, routing summaries with their accepted event.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import delete, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from broker.ingest.models import AcceptedEvent, EventRoute
from consumers.models import FeedItem
from consumers.webhooks.models import WebhookAttempt

# Keys per statement: well inside every driver's limit on bound parameters.
CHUNK = 500
T = TypeVar("T")


def _chunks(items: Collection[T]) -> Iterator[Sequence[T]]:
    ordered = sorted(items)  # type: ignore[type-var]
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


async def remove_feed_items(session: AsyncSession, item_ids: Collection[str]) -> None:
    for chunk in _chunks(item_ids):
        await session.execute(delete(WebhookAttempt).where(WebhookAttempt.item_id.in_(chunk)))
        await session.execute(delete(FeedItem).where(FeedItem.item_id.in_(chunk)))


async def remove_accepted_events(
    session: AsyncSession, events: Collection[tuple[str, str]]
) -> None:
    """``events``: (source organisation, event id) pairs."""
    for chunk in _chunks(events):
        for table in (EventRoute, AcceptedEvent):
            await session.execute(
                delete(table).where(tuple_(table.source_org, table.event_id).in_(chunk))
            )
