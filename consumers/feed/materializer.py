"""Materialise ``deliveries.v1`` into the SQL read model, and turn withdrawals into notices.

One consumer reads the deliveries and the registry changes, serially, so the two withdrawal
paths cannot miss each other: a delivery under an already-withdrawn consent is named in a notice
when it is stored, and a withdrawal names every delivery stored before it. Inserts are idempotent
on the delivery id; offsets are committed after the SQL commit (at least once in, once out).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker import kafka
from broker.config import Settings
from broker.db import utcnow
from broker.ingest.models import EventRoute
from broker.metrics import DELIVERIES_MATERIALISED
from broker.registry.models import Consent
from broker.supervise import keep_running
from consumers.models import FeedItem, lock_feed
from consumers.notices import CONSENT_WITHDRAWN, notice

log = structlog.get_logger("samsyn.materializer")
GROUP = "samsyn-materializer"
# How long a withdrawal record may precede the commit that makes it true (then it was rolled back).
WITHDRAWAL_VISIBLE_WITHIN_MS = 30_000


class WithdrawalNotCommitted(Exception):
    """A consent.withdrawn record whose SQL commit is not visible yet."""


def _time(raw: str | None) -> datetime:
    if not raw:
        return utcnow()
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


class Materializer:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.stopping = asyncio.Event()
        self._stored = 0  # deliveries stored by the current batch, counted once it commits

    async def run(self) -> None:
        await keep_running(self._session, self.stopping, log, "materializer")

    async def _session(self) -> None:
        consumer = kafka.consumer(self.settings, kafka.DELIVERIES, kafka.REGISTRY, group_id=GROUP)
        await consumer.start()
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=1000)
                records = sorted(
                    (r for rs in batch.values() for r in rs), key=lambda r: r.timestamp
                )
                if not records:
                    continue
                self._stored = 0
                async with self.sessions() as session, session.begin():
                    await lock_feed(session)
                    for r in records:
                        await self.apply(session, r.topic, r.value, r.timestamp)
                DELIVERIES_MATERIALISED.inc(self._stored)
                await consumer.commit()
        finally:
            await consumer.stop()

    async def apply(
        self, session: AsyncSession, topic: str, value: dict[str, Any], timestamp_ms: int
    ) -> None:
        if topic.endswith(kafka.REGISTRY):
            if value.get("kind") == "consent.withdrawn":
                await self._withdrawn(session, value["consent_id"], timestamp_ms)
            return
        kind = value.get("kind")
        if kind == "delivery":
            await self._delivery(session, value)
        elif kind == "routed":
            await self._routed(session, value)

    async def _routed(self, session: AsyncSession, r: dict[str, Any]) -> None:
        """Record where the event went; a copy routed again (a retried publish) changes nothing.

        An insert into its own table, not an UPDATE of ``accepted_events``: that row may not be
        committed yet (the API commits after Kafka's acknowledgement)."""
        key = (r["source_org"], r["event_id"])
        if await session.get(EventRoute, key) is None:
            session.add(EventRoute(source_org=key[0], event_id=key[1], recipients=r["recipients"]))
            await session.flush()

    async def _delivery(self, session: AsyncSession, d: dict[str, Any]) -> None:
        exists = await session.execute(
            select(FeedItem.seq).where(FeedItem.item_id == d["delivery_id"])
        )
        if exists.first() is not None:
            return
        item = FeedItem(
            item_id=d["delivery_id"],
            org_id=d["org"],
            type=d["type"],
            event_id=d["event_id"],
            source_org=d["source_org"],
            source_kind=d["source_kind"],
            subject=d["subject"],
            subject_pseudonym=d["subject_pseudonym"],
            time=_time(d.get("time")),
            purpose=d["purpose"],
            legal_ground=d["legal_ground"],
            consent_id=d.get("consent_id"),
            categories=d["categories"],
            data=d["data"],
        )
        session.add(item)
        await session.flush()
        self._stored += 1
        if item.consent_id:
            consent = await session.get(Consent, item.consent_id)
            if consent is not None and consent.withdrawn_at is not None:
                # Decided before the withdrawal, stored after it: tell the recipient at once.
                await self._notify(session, consent.id, [item])

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
        by_org: dict[str, list[FeedItem]] = defaultdict(list)
        for item in items:
            by_org[item.org_id].append(item)
        for org, delivered in sorted(by_org.items()):
            session.add(
                notice(
                    org=org,
                    type=CONSENT_WITHDRAWN,
                    data={"consent_id": consent_id, "delivery_ids": [i.item_id for i in delivered]},
                    subject=delivered[0].subject,
                    subject_pseudonym=delivered[0].subject_pseudonym,
                )
            )
            await session.execute(
                update(FeedItem)
                .where(FeedItem.item_id.in_([i.item_id for i in delivered]))
                .values(withdrawal_notified=True)
            )
