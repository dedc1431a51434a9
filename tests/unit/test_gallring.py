"""Gallring removes exactly what has outlived its retention and destroys exactly the keys of
children with nothing left; a dry run reports the same and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import broker.audit.models  # noqa: F401  (the imports register every table on Base.metadata)
import consumers.webhooks.models  # noqa: F401
from broker.config import Settings
from broker.infra.db import Base, make_engine, make_sessionmaker, utcnow
from broker.ingest.models import AcceptedEvent
from broker.privacy.gallring import run_gallring
from broker.privacy.kek import LocalKeks
from broker.privacy.models import SubjectKey
from broker.records import AuditEntry
from broker.registry.models import Consent, Organisation, Relationship
from consumers.models import FeedItem
from tests.kit.keylog import key_ring

NOW = utcnow()
DAY = timedelta(days=1)
SETTINGS = Settings(
    gallring_after_read=10 * DAY,
    gallring_unread=100 * DAY,
    gallring_after_consent=5 * DAY,
    gallring_report_after_read=2 * DAY,
    gallring_notice=30 * DAY,
    gallring_accepted_event=50 * DAY,
    gallring_key_grace=DAY,
)


def child(n: int) -> str:
    return f"p1:{n:064x}"


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/gallring.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


def item(name: str, pseudonym: str, *, age: timedelta, **extra: Any) -> FeedItem:
    return FeedItem(
        item_id=name,
        org_id="eh-a",
        type="t",
        subject_pseudonym=pseudonym,
        time=NOW - age,
        categories=[],
        created_at=NOW - age,
        **extra,
    )


async def seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    delivery = {"source_org": "school-a", "event_id": "e"}
    async with sessions() as session, session.begin():
        session.add(Organisation(id="school-a", name="A", kind="school", municipality="1460"))
    async with sessions() as session, session.begin():
        session.add_all(
            [
                # child 1: everything expired, nothing else: its key goes
                item(
                    "read-long-ago",
                    child(1),
                    age=20 * DAY,
                    first_read_at=NOW - 11 * DAY,
                    **delivery,
                ),
                # child 2: one expired, one live delivery: its key stays
                item("unread-too-long", child(2), age=101 * DAY, **delivery),
                item(
                    "read-recently", child(2), age=20 * DAY, first_read_at=NOW - 9 * DAY, **delivery
                ),
                # child 3: a report read 3 days ago (expired), a consent delivery whose consent
                # ended 6 days ago (expired); a live consent remains: its key stays
                item(
                    "report-read",
                    child(3),
                    age=4 * DAY,
                    first_read_at=NOW - 3 * DAY,
                    legal_ground="mandatory_report",
                    **delivery,
                ),
                item("consent-ended", child(3), age=7 * DAY, consent_id="c-ended", **delivery),
                item("consent-live", child(4), age=7 * DAY, consent_id="c-live", **delivery),
                # notices: one old (goes), one new (stays)
                item("old-notice", child(5), age=31 * DAY),
                item("new-notice", child(6), age=29 * DAY),
                Consent(
                    id="c-ended",
                    subject_pseudonym=child(3),
                    recorded_by_org="school-a",
                    given_by=["guardian"],
                    scope={},
                    valid_from=NOW - 60 * DAY,
                    valid_until=NOW + 60 * DAY,
                    withdrawn_at=NOW - 6 * DAY,
                ),
                Consent(
                    id="c-live",
                    subject_pseudonym=child(3),
                    recorded_by_org="school-a",
                    given_by=["guardian"],
                    scope={},
                    valid_from=NOW - 60 * DAY,
                    valid_until=NOW + 60 * DAY,
                ),
                # child 7: only an ended relationship and an old accepted event: key goes;
                # child 8: an active relationship: key stays
                Relationship(
                    id="r-ended",
                    subject_pseudonym=child(7),
                    org_id="school-a",
                    role="enrolled",
                    declared_by_org="school-a",
                    valid_from=NOW - 90 * DAY,
                    valid_until=None,
                    ended_at=NOW - DAY,
                ),
                Relationship(
                    id="r-live",
                    subject_pseudonym=child(8),
                    org_id="school-a",
                    role="enrolled",
                    declared_by_org="school-a",
                    valid_from=NOW - 90 * DAY,
                    valid_until=None,
                ),
                AcceptedEvent(
                    source_org="school-a",
                    event_id="old",
                    body_hash="x",
                    subject_pseudonym=child(7),
                    type="t",
                    envelope={},
                    accepted_at=NOW - 51 * DAY,
                ),
                AcceptedEvent(
                    source_org="school-a",
                    event_id="new",
                    body_hash="x",
                    subject_pseudonym=child(9),
                    type="t",
                    envelope={},
                    accepted_at=NOW - 49 * DAY,
                ),
            ]
        )
    keys = key_ring(sessions, LocalKeks({"k": bytes(32)}, "k"))
    await keys.for_writing([child(n) for n in range(1, 11)])
    async with sessions() as session, session.begin():
        for row in (await session.execute(select(SubjectKey))).scalars():
            # child 10 has nothing at all but its key is new (ingest is about to use it)
            row.created_at = NOW - (timedelta(hours=1) if row.pseudonym == child(10) else 2 * DAY)


async def state(sessions: async_sessionmaker[AsyncSession]) -> tuple[set[str], set[str], set[str]]:
    async with sessions() as session:
        items = set((await session.execute(select(FeedItem.item_id))).scalars())
        events = set((await session.execute(select(AcceptedEvent.event_id))).scalars())
        live = set(
            (
                await session.execute(
                    select(SubjectKey.pseudonym).where(SubjectKey.wrapped_key.is_not(None))
                )
            ).scalars()
        )
    return items, events, live


async def test_gallring_removes_exactly_the_expired_and_destroys_exactly_the_orphaned_keys(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    before = await state(sessions)
    audit: list[AuditEntry] = []

    async def sink(*records: AuditEntry) -> None:
        audit.extend(records)

    keys = key_ring(sessions, LocalKeks({"k": bytes(32)}, "k"))
    dry = await run_gallring(sessions, keys, SETTINGS, sink, now=NOW, dry_run=True)
    assert await state(sessions) == before
    assert audit == []

    done = await run_gallring(sessions, keys, SETTINGS, sink, now=NOW)
    assert done == dry
    assert done.counts() == {
        "deliveries": 4,
        "notices": 1,
        "accepted_events": 1,
        "keys_destroyed": 3,
    }
    items, events, live = await state(sessions)
    assert items == {"read-recently", "consent-live", "new-notice"}
    assert events == {"new"}
    assert done.keys_destroyed == sorted([child(1), child(5), child(7)])
    assert live == {child(n) for n in (2, 3, 4, 6, 8, 9, 10)}
    assert [r.action for r in audit] == ["gallring"] + 3 * ["subject_key.destroyed"]
    assert audit[0].reasons == [
        "deliveries:4",
        "notices:1",
        "accepted_events:1",
        "keys_destroyed:3",
    ]
    assert [r.subject_pseudonym for r in audit[1:]] == done.keys_destroyed

    audit.clear()
    again = await run_gallring(sessions, keys, SETTINGS, sink, now=NOW)
    assert not again.anything
    assert audit == []
