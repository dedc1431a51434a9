"""The routing summary of an event is recorded even when it overtakes the event's own commit.

The API commits its ``accepted_events`` row only after Kafka has acknowledged the event, so the
router and the materializer can be faster than that commit. The summary used to be an UPDATE of
that row: on PostgreSQL it matched nothing and the event stayed "pending" for ever although it was
delivered (the fault suite found it). It is now an insert into ``event_routes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import broker.audit.models  # the imports register every table on Base.metadata
import broker.registry.models  # noqa: F401
import consumers.models  # noqa: F401
from broker.config import Settings
from broker.infra.db import Base, make_engine, make_sessionmaker
from broker.ingest.models import AcceptedEvent, EventRoute
from broker.privacy.kek import LocalKeks
from broker.records import RoutedRecipient, RoutingSummary
from consumers.feed.materializer import Materializer
from tests.kit.keylog import key_ring

SUMMARY = RoutingSummary(
    source_org="school-a",
    event_id="e-1",
    recipients=[RoutedRecipient(org="eh-a", shared=True, legal_ground="consent", categories=[])],
)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/routes.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _apply(sessions: async_sessionmaker[AsyncSession], value: RoutingSummary) -> None:
    materializer = Materializer(
        Settings(), sessions, key_ring(sessions, LocalKeks({"k": bytes(32)}, "k"))
    )
    async with sessions() as session, session.begin():
        await materializer.apply(session, value, 0)


async def test_summary_before_the_accepted_row_is_kept(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A summary materialised before the event's row is committed is there once the row is."""
    await _apply(sessions, SUMMARY)
    async with sessions() as session, session.begin():
        session.add(
            AcceptedEvent(
                source_org="school-a",
                event_id="e-1",
                body_hash="0" * 64,
                subject_pseudonym="k:" + "0" * 64,
                type="se.backabarnet.attendance.flagged.v1",
                envelope={},
            )
        )
    async with sessions() as session:
        route = await session.get(EventRoute, ("school-a", "e-1"))
    assert route is not None
    assert route.recipients == [
        {"org": "eh-a", "shared": True, "legal_ground": "consent", "categories": []}
    ]


async def test_a_second_summary_of_the_same_event_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A copy routed again (a publish retried after a crash) leaves the first summary, as the
    feed keeps the first delivery."""
    await _apply(sessions, SUMMARY)
    await _apply(sessions, msgspec.structs.replace(SUMMARY, recipients=[]))
    async with sessions() as session:
        rows = list((await session.execute(select(EventRoute))).scalars())
    assert [r.recipients for r in rows] == [msgspec.to_builtins(SUMMARY.recipients)]
