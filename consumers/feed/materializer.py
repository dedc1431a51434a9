"""Materialise ``deliveries.v1`` into the SQL read model, and turn withdrawals into notices.

One consumer reads the deliveries and the registry changes, serially, so the two withdrawal
paths cannot miss each other: a delivery under an already-withdrawn consent is named in a notice
when it is stored, and a withdrawal names every delivery stored before it. Inserts are idempotent
on the delivery id; the positions are saved in the same SQL transaction (at least once in, once
out).
A record that does not decode as what its topic holds fails the batch, which is read again: the
materializer stops there rather than skip a delivery or a withdrawal.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import datetime

import msgspec
import structlog
from aiokafka.structs import TopicPartition
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.infra import kafka, positions
from broker.infra.bulk import insert_rows, stored_keys, written_optimistically
from broker.infra.db import utcnow
from broker.ingest.models import EVENT_ROUTES
from broker.privacy.keyring import SubjectKeys
from broker.records import (
    ConsentWithdrawn,
    DeliveriesRecord,
    Delivery,
    RegistryRecord,
    RoutingSummary,
    decode_deliveries,
    decode_registry,
)
from broker.registry.models import Consent
from broker.runtime.metrics import DELIVERIES_MATERIALISED
from broker.runtime.supervise import (
    Progress,
    Watch,
    close_within,
    keep_running,
    within,
)
from broker.times import rfc3339
from consumers.models import FEED_ITEMS, FeedItem, lock_feed
from consumers.notices import CONSENT_WITHDRAWN, notice
from consumers.reads import Opened, opened

log = structlog.get_logger("samsyn.materializer")
GROUP = "samsyn-materializer"
TOPICS = (kafka.DELIVERIES, kafka.REGISTRY)
# How long a withdrawal record may precede the commit that makes it true (then it was rolled back).
WITHDRAWAL_VISIBLE_WITHIN_MS = 30_000


# What the materializer reads: deliveries.v1 and registry.v1, with the Kafka timestamp (ms).
Timed = tuple[DeliveriesRecord | RegistryRecord, int]


class WithdrawalNotCommitted(Exception):
    """A consent.withdrawn record whose SQL commit is not visible yet."""


def _time(raw: str | None) -> datetime:
    if not raw:
        return utcnow()
    return rfc3339(raw)


def decode(topic: str, raw: bytes | None) -> DeliveriesRecord | RegistryRecord:
    """A record of either topic; raises ``msgspec.DecodeError`` for one that is not."""
    if topic.endswith(kafka.REGISTRY):
        return decode_registry(raw or b"")
    return decode_deliveries(raw or b"")


class Materializer:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], keys: SubjectKeys
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.keys = keys  # only to open a delivery for its withdrawal notice
        self.stopping = asyncio.Event()
        self.progress = Progress()
        self._stored = 0  # deliveries stored by the current batch, counted once it commits

    async def run(self) -> None:
        watch = Watch.group(self.progress, self.settings, GROUP, TOPICS)
        await keep_running(self._session, self.stopping, log, "materializer", watch)

    async def _session(self) -> None:
        consumer = kafka.consumer(
            self.settings, group_id=GROUP, instance=self.settings.worker_instance
        )
        positions.subscribe(consumer, self.sessions, self.settings, GROUP, *TOPICS)
        marks = positions.LagMarks(consumer, self.settings.kafka_deadline_s)
        try:
            await within(consumer.start(), self.settings.kafka_deadline_s, "starting the consumer")
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
                records = sorted(
                    (r for rs in batch.values() for r in rs), key=lambda r: r.timestamp
                )
                self.progress.hold(bool(records))
                if not records:
                    await marks.idle()
                    continue
                await self.store_batch(
                    [(decode(r.topic, r.value), r.timestamp) for r in records],
                    positions.next_offsets(records),
                )
                DELIVERIES_MATERIALISED.inc(self._stored)
                await marks.stored()
                self.progress.moved()
        finally:
            await close_within(consumer.stop(), log, "materializer consumer")

    async def store_batch(self, records: list[Timed], offsets: dict[TopicPartition, int]) -> None:
        """Apply a batch of records and save the positions after it, in one transaction (written
        as if none of its deliveries were stored before: ``written_optimistically``)."""

        async def write(look_first: bool) -> None:
            self._stored = 0
            async with self.sessions() as session, session.begin():
                await lock_feed(session)
                await self.apply_all(session, records, look_first=look_first)
                await positions.save(session, self.settings.topic(GROUP), offsets)

        await written_optimistically(write)

    async def apply(
        self, session: AsyncSession, record: DeliveriesRecord | RegistryRecord, timestamp_ms: int
    ) -> None:
        await self.apply_all(session, [(record, timestamp_ms)])

    async def apply_all(
        self, session: AsyncSession, records: list[Timed], *, look_first: bool = True
    ) -> None:
        """Apply records in their order. A run of deliveries and routing summaries between two
        registry records is stored with a few statements (a lookup of the deliveries stored
        already unless not ``look_first``, one bulk insert) instead of a round trip per record;
        registry records are applied where they stand."""
        run: list[DeliveriesRecord] = []
        for value, timestamp_ms in records:
            if isinstance(value, Delivery | RoutingSummary):
                run.append(value)
                continue
            await self._store(session, run, look_first)
            run = []
            if isinstance(value, ConsentWithdrawn):
                await self._withdrawn(session, value.consent_id, timestamp_ms)
        await self._store(session, run, look_first)

    async def _store(
        self, session: AsyncSession, values: list[DeliveriesRecord], look_first: bool
    ) -> None:
        deliveries: dict[str, Delivery] = {}
        routes: dict[tuple[str, str], RoutingSummary] = {}
        for v in values:
            if isinstance(v, Delivery):
                deliveries.setdefault(v.delivery_id, v)  # the first copy stays
            else:
                routes.setdefault((v.source_org, v.event_id), v)
        if deliveries:
            await self._deliveries(session, list(deliveries.values()), look_first)
        if routes:
            await self._routes(session, routes)

    async def _routes(
        self, session: AsyncSession, routes: dict[tuple[str, str], RoutingSummary]
    ) -> None:
        """Record where the events went; a copy routed again (a retried publish) changes nothing
        (one statement: the first summary stays).

        Inserts into their own table, not an UPDATE of ``accepted_events``: that row may not be
        committed yet (the API commits after Kafka's acknowledgement)."""
        rows = [
            {
                "source_org": source_org,
                "event_id": event_id,
                "recipients": msgspec.to_builtins(r.recipients),
            }
            for (source_org, event_id), r in routes.items()
        ]
        await insert_rows(session, EVENT_ROUTES, rows, skip_conflicts=True)

    async def _deliveries(
        self, session: AsyncSession, ds: list[Delivery], look_first: bool
    ) -> None:
        """Store the deliveries not stored before (idempotent on the delivery id), in order; not
        ``look_first``, a delivery stored before fails the insert (IntegrityError)."""
        known: set[str] = (
            await stored_keys(session, FEED_ITEMS.c.item_id, [d.delivery_id for d in ds])
            if look_first
            else set()
        )
        new = [d for d in ds if d.delivery_id not in known]
        if not new:
            return
        await insert_rows(
            session,
            FEED_ITEMS,
            [
                {
                    "item_id": d.delivery_id,
                    "org_id": d.org,
                    "type": d.type,
                    "event_id": d.event_id,
                    "source_org": d.source_org,
                    "source_kind": d.source_kind,
                    "subject_pseudonym": d.subject_pseudonym,
                    "time": _time(d.time),
                    "purpose": d.purpose,
                    "legal_ground": d.legal_ground,
                    "statute": d.statute,
                    "consent_id": d.consent_id,
                    "categories": d.categories,
                    # Stored as the router sealed it: the same associated data (the item id).
                    "sealed": d.sealed,
                }
                for d in new
            ],
        )
        self._stored += len(new)
        consent_ids = {d.consent_id for d in new if d.consent_id}
        if not consent_ids:
            return
        withdrawn = await session.execute(
            select(Consent.id).where(Consent.id.in_(consent_ids), Consent.withdrawn_at.is_not(None))
        )
        for consent_id in sorted(withdrawn.scalars()):
            # Decided before the withdrawal, stored after it: tell the recipients at once.
            stored = await session.execute(
                select(FeedItem)
                .where(
                    FeedItem.item_id.in_([d.delivery_id for d in new if d.consent_id == consent_id])
                )
                .order_by(FeedItem.seq)
            )
            await self._notify(session, consent_id, list(stored.scalars()))

    async def _withdrawn(self, session: AsyncSession, consent_id: str, timestamp_ms: int) -> None:
        consent = await session.get(Consent, consent_id)
        if consent is None or consent.withdrawn_at is None:
            # The API produces the record before its SQL commit. Until the withdrawal is visible a
            # delivery stored now would not be named by either path, so retry the whole batch.
            if time.time() * 1000 - timestamp_ms < WITHDRAWAL_VISIBLE_WITHIN_MS:
                raise WithdrawalNotCommitted(consent_id)
            log.warning(
                "withdrawal record without a committed withdrawal; skipped", consent_id=consent_id
            )
            return
        rows = await session.execute(
            select(FeedItem).where(
                FeedItem.consent_id == consent_id, FeedItem.withdrawal_notified.is_(False)
            )
        )
        await self._notify(session, consent_id, list(rows.scalars()))

    async def _notify(self, session: AsyncSession, consent_id: str, items: list[FeedItem]) -> None:
        """A notice per recipient naming its deliveries under the consent. Deliveries that do
        not open (their child erased) are marked but named in no notice: nothing of them is
        left to tell about."""
        by_org: dict[str, list[Opened]] = defaultdict(list)
        for shown in await opened(self.keys, items):
            by_org[shown.item.org_id].append(shown)
        for org, delivered in sorted(by_org.items()):
            first = delivered[0]
            assert first.item.subject_pseudonym is not None  # a delivery is about a child
            session.add(
                notice(
                    key=first.key,
                    org=org,
                    type=CONSENT_WITHDRAWN,
                    data={
                        "consent_id": consent_id,
                        "delivery_ids": [s.item.item_id for s in delivered],
                    },
                    subject=first.personal.subject,
                    subject_pseudonym=first.item.subject_pseudonym,
                )
            )
        if items:
            await session.execute(
                update(FeedItem)
                .where(FeedItem.item_id.in_([i.item_id for i in items]))
                .values(withdrawal_notified=True)
            )
