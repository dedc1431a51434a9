"""The materializer stores a batch of records with a few statements; the outcome is the one a
record-at-a-time store would give: each delivery once (also when a batch repeats it), feed order
as the records came, a withdrawal between deliveries applied where it stands, and a delivery
stored after its consent was withdrawn named in a notice at once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import broker.audit.models  # the imports register every table on Base.metadata
import broker.ingest.models  # noqa: F401
from broker.config import Settings
from broker.infra.db import Base, make_engine, make_sessionmaker, utcnow
from broker.privacy.kek import LocalKeks
from broker.privacy.models import SubjectKey
from broker.privacy.payloads import Personal, feed_ad, open_personal, seal_personal
from broker.records import (
    ConsentWithdrawn,
    DeliveriesRecord,
    Delivery,
    RegistryRecord,
    RoutedRecipient,
    RoutingSummary,
)
from broker.registry.models import Consent, Organisation
from consumers.feed.materializer import Materializer
from consumers.models import FeedItem
from consumers.notices import CONSENT_WITHDRAWN
from tests.kit.keylog import key_ring

CONSENT = "c-1"
KEKS = LocalKeks({"k": bytes(range(32))}, "k")
CHILD_KEY = AESGCM(bytes(range(1, 33)))


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/feed.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        session.add(Organisation(id="school-a", name="s", kind="school", municipality="1438"))
        await session.flush()
        session.add(
            Consent(
                id=CONSENT,
                subject_pseudonym="k1:p",
                recorded_by_org="school-a",
                given_by=["guardian"],
                scope={},
                valid_from=utcnow() - timedelta(days=1),
                valid_until=utcnow() + timedelta(days=1),
            )
        )
        kid, wrapped = await KEKS.wrap(bytes(range(1, 33)), context=b"k1:p")
        session.add(SubjectKey(pseudonym="k1:p", kek_id=kid, wrapped_key=wrapped))
    yield sessions
    await engine.dispose()


def delivery(org: str, consent: str | None = CONSENT) -> Delivery:
    did = str(uuid.uuid4())
    personal = Personal(subject="201601019802", data={"absence_percent": "20-50"})
    return Delivery(
        delivery_id=did,
        org=org,
        event_id=str(uuid.uuid4()),
        type="se.backabarnet.attendance.flagged.v1",
        subject_pseudonym="k1:p",
        time="2026-11-26T10:00:00Z",
        source_org="school-a",
        source_kind="school",
        purpose="early_support",
        legal_ground="consent" if consent else "mandatory_report",
        consent_id=consent,
        categories=["attendance", "identity"],
        sealed=seal_personal(CHILD_KEY, personal, feed_ad(did)),
        obligations=[],
    )


def summary(d: Delivery) -> RoutingSummary:
    recipient = RoutedRecipient(
        org=d.org,
        shared=True,
        legal_ground=d.legal_ground,
        categories=d.categories,
        delivery_id=d.delivery_id,
    )
    return RoutingSummary(source_org=d.source_org, event_id=d.event_id, recipients=[recipient])


async def _apply(
    sessions: async_sessionmaker[AsyncSession],
    records: list[DeliveriesRecord | RegistryRecord],
) -> int:
    materializer = Materializer(Settings(), sessions, key_ring(sessions, KEKS))
    async with sessions() as session, session.begin():
        await materializer.apply_all(session, [(r, 0) for r in records])
    return materializer._stored


async def _feed(sessions: async_sessionmaker[AsyncSession]) -> list[FeedItem]:
    async with sessions() as session:
        return list((await session.execute(select(FeedItem).order_by(FeedItem.seq))).scalars())


def _opened(item: FeedItem) -> Personal:
    return open_personal(CHILD_KEY, item.sealed, feed_ad(item.item_id))


async def _withdraw(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        consent = await session.get(Consent, CONSENT)
        assert consent is not None
        consent.withdrawn_at = utcnow()


async def test_each_delivery_once_in_the_order_of_the_records(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first, second, third = delivery("eh-a"), delivery("soc-a"), delivery("vc")
    assert await _apply(sessions, [first, second, first, third, summary(first)]) == 3
    assert await _apply(sessions, [second, third]) == 0
    feed = await _feed(sessions)
    assert [i.item_id for i in feed] == [d.delivery_id for d in (first, second, third)]
    assert [_opened(i).data for i in feed] == [{"absence_percent": "20-50"}] * 3
    assert not any(i.withdrawal_notified for i in feed)


async def test_a_withdrawal_in_the_batch_applies_where_it_stands(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Deliveries before the withdrawal record are named by its notice; the one after it (decided
    before the withdrawal, stored after it) gets a notice of its own when stored; a delivery
    under no consent is left alone."""
    before, after, unrelated = delivery("eh-a"), delivery("eh-a"), delivery("soc-a", None)
    await _withdraw(sessions)
    withdrawal = ConsentWithdrawn(org="school-a", client="school-a-app", consent_id=CONSENT)
    assert await _apply(sessions, [before, withdrawal, after, unrelated]) == 3
    feed = await _feed(sessions)
    notices = [i for i in feed if i.type == CONSENT_WITHDRAWN]
    named = [_opened(i).data["delivery_ids"] for i in notices]
    assert {_opened(i).subject for i in notices} == {"201601019802"}
    assert named == [[before.delivery_id], [after.delivery_id]]
    stored = {i.item_id: i for i in feed}
    assert stored[before.delivery_id].withdrawal_notified
    assert stored[after.delivery_id].withdrawal_notified
    assert not stored[unrelated.delivery_id].withdrawal_notified
