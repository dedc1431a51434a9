"""The router's in-memory view of the registry: organisations, live relationships, consents.

Loaded from the database when a routing session starts, then kept current by ``registry.v1``
instead of reading the database for every batch. What "current" means, precisely:

    Every consent or relationship change whose API call was answered before an event was
    accepted is in the view before that event is decided.

Why it holds: the API writes the change's record to ``registry.v1`` (acks=all) and commits the
SQL row before it answers (``broker/registry/routes.py``). The router fetches the event after it
was accepted, and before deciding the batch (``current()``) asks Kafka for ``registry.v1``'s end
offset and reads the topic up to it: the change's record lies below that end. For each change
read it re-reads the row by id, committed by then. Before a batch's outputs are committed the
router reads to the end once more and re-checks the consents the allows relied on
(``withdrawn``), so a withdrawal answered while a batch was decided stops it too.

A record can be read before its SQL commit is visible (the Kafka write comes first). Such a
change stays pending and its row is read again before every batch until it shows the change;
meanwhile a withdrawal or an end is applied from the record itself (the safe side: less is
shared, never more). A change whose commit never comes (the API call failed after the Kafka
write) is dropped from the pending ones after ``PENDING_S`` and the row read as it is.

Loading: ``registry.v1``'s read position is set to the first record of the last
``REPLAY_S`` seconds before the database is read, so that a change written to Kafka before the
load but committed after it is applied too (re-reading a row is idempotent).

Organisations are created and never changed: all are loaded at the start, one the view does not
know yet (created since) is read when an event or relationship names it, and the social
services of a report's municipalities are read from the database for a batch with a report
(rare, and a report must reach a social services created after the view was loaded).
Relationships that have ended or expired are left out: they never become active again.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from prometheus_client import Counter, Gauge
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.infra import kafka
from broker.infra.db import utcnow
from broker.policy.input import (
    Pending,
    RegistryFacts,
    is_report,
    org_facts,
    report_municipalities,
    social_services,
)
from broker.records import (
    ConsentCreated,
    ConsentWithdrawn,
    RegistryRecord,
    RelationshipCreated,
    RelationshipEnded,
    decode_registry,
)
from broker.registry.models import Consent, Organisation, Relationship
from broker.registry.service import active
from broker.runtime.state import OrgFacts
from broker.runtime.supervise import within

log = structlog.get_logger("samsyn.router.registry")

# registry.v1 records read again at a load: longer than any API call between its Kafka write
# and its SQL commit can take (both are bounded by the Kafka deadline and the database's).
REPLAY_S = 600.0
# How long a change whose row does not show it yet is read again before every batch.
PENDING_S = 600.0

CHANGES = Counter("samsyn_router_registry_changes_total", "registry.v1 records the router applied")
PENDING = Gauge(
    "samsyn_router_registry_pending",
    "registry.v1 changes whose SQL commit the router has not seen yet",
)


@dataclass(slots=True)
class Held:
    """A live relationship as the view holds it."""

    pseudonym: str
    org: str
    role: str
    valid_from: datetime
    valid_until: datetime | None
    ended_at: datetime | None


def _held(rel: Relationship) -> Held:
    return Held(
        rel.subject_pseudonym, rel.org_id, rel.role, rel.valid_from, rel.valid_until, rel.ended_at
    )


class RegistryView:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self._orgs: dict[str, OrgFacts] = {}
        self._relationships: dict[str, Held] = {}
        self._by_child: dict[str, dict[str, Held]] = {}
        self._consents: dict[str, Consent] = {}
        # change id -> (the record, when first read, monotonic s)
        self._pending: dict[str, tuple[RegistryRecord, float]] = {}
        self._loaded = False
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        # current() runs for the batch being decided and for the one being committed at once.
        self._lock = asyncio.Lock()

    async def follow(self, partitions: set[int]) -> None:
        """Load from the database and follow ``registry.v1`` (its ``partitions``, as the
        producer's metadata has them) from then on: a routing session."""
        s = self.settings
        consumer = AIOKafkaConsumer(
            **kafka.connection(s),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # The fetch sent after the last records of a read (before the pause) waits this long
            # on the broker, and the next batch's end-offset request behind it (see below).
            fetch_max_wait_ms=20,
        )
        await within(consumer.start(), s.kafka_deadline_s, "starting the registry consumer")
        try:
            topic = s.topic(kafka.REGISTRY)
            self._partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(self._partitions)
            consumer.pause(*self._partitions)  # fetched only while read to the end (below)
            since = int((time.time() - REPLAY_S) * 1000)
            starts = await within(
                consumer.offsets_for_times(dict.fromkeys(self._partitions, since)),
                s.kafka_deadline_s,
                "the registry's replay offsets",
            )
            ends = await within(
                consumer.end_offsets(self._partitions), s.kafka_deadline_s, "registry end offsets"
            )
            for tp in self._partitions:
                found = starts.get(tp)
                consumer.seek(tp, found.offset if found is not None else ends[tp])
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._loaded = False
        await self.current()

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def current(self) -> None:
        """Bring the view up to ``registry.v1``'s end (see the module's docstring); loaded from
        the database first if it is not yet."""
        async with self._lock:
            if not self._loaded:
                await self._load()
            changes = await self._read_to_end() if self._consumer is not None else []
            for change in changes:
                self._pending[_change_id(change)] = (change, time.monotonic())
            if self._pending:
                await self._apply_pending()
            PENDING.set(len(self._pending))

    async def _load(self) -> None:
        now = utcnow()
        async with self.sessions() as session:
            self._orgs = {
                o.id: org_facts(o) for o in (await session.execute(select(Organisation))).scalars()
            }
            live = await session.execute(
                select(Relationship).where(
                    Relationship.ended_at.is_(None),
                    or_(Relationship.valid_until.is_(None), Relationship.valid_until > now),
                )
            )
            self._relationships = {}
            self._by_child = {}
            for rel in live.scalars():
                self._hold(rel.id, _held(rel))
            self._consents = {c.id: c for c in (await session.execute(select(Consent))).scalars()}
        self._loaded = True
        log.info(
            "registry view loaded",
            organisations=len(self._orgs),
            relationships=len(self._relationships),
            consents=len(self._consents),
        )

    async def _read_to_end(self) -> list[RegistryRecord]:
        consumer = self._consumer
        assert consumer is not None
        s = self.settings
        ends = await within(
            consumer.end_offsets(self._partitions), s.kafka_deadline_s, "registry end offsets"
        )
        changes: list[RegistryRecord] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in self._partitions])

        async def read() -> None:
            while await behind():
                got = await consumer.getmany(*self._partitions, timeout_ms=100)
                for records in got.values():
                    for r in records:
                        try:
                            changes.append(decode_registry(r.value or b""))
                        except msgspec.DecodeError as err:  # ValidationError too
                            log.error("unreadable registry record; skipped", error=str(err))

        # The partitions stay paused unless there is something to read: a fetching consumer
        # keeps a fetch waiting on the broker for fetch.max.wait.ms, and the broker answers a
        # connection's requests in order, so each batch's end-offset request waited behind it
        # (300-800 ms of every batch, measured in make bench).
        if await behind():
            consumer.resume(*self._partitions)
            try:
                await within(read(), s.kafka_deadline_s, "reading registry.v1 to its end")
            finally:
                consumer.pause(*self._partitions)
        CHANGES.inc(len(changes))
        return changes

    async def _apply_pending(self) -> None:
        """Read the rows of the pending changes; apply those that show their change."""
        consent_ids = {i for i, (c, _) in self._pending.items() if _about_consent(c)}
        rel_ids = self._pending.keys() - consent_ids
        async with self.sessions() as session:
            consents = await _by_id(session, Consent, consent_ids)
            rels = await _by_id(session, Relationship, rel_ids)
            await self._know(session, {r.org_id for r in rels.values()} - self._orgs.keys())
        now_s = time.monotonic()
        for change_id, (change, seen) in list(self._pending.items()):
            expired = now_s - seen > PENDING_S
            if _about_consent(change):
                consent = consents.get(change_id)
                shows = consent is not None and (
                    isinstance(change, ConsentCreated) or consent.withdrawn_at is not None
                )
                if consent is not None and (shows or expired):
                    self._consents[change_id] = consent
                elif isinstance(change, ConsentWithdrawn) and change_id in self._consents:
                    held = self._consents[change_id]
                    held.withdrawn_at = held.withdrawn_at or utcnow()
            else:
                rel = rels.get(change_id)
                shows = rel is not None and (
                    isinstance(change, RelationshipCreated) or rel.ended_at is not None
                )
                if rel is not None and (shows or expired):
                    self._hold(change_id, _held(rel))
                elif isinstance(change, RelationshipEnded) and change_id in self._relationships:
                    held_rel = self._relationships[change_id]
                    held_rel.ended_at = held_rel.ended_at or utcnow()
            if shows or expired:
                del self._pending[change_id]

    def _hold(self, rel_id: str, held: Held) -> None:
        self._relationships[rel_id] = held
        self._by_child.setdefault(held.pseudonym, {})[rel_id] = held

    async def _know(self, session: AsyncSession, org_ids: set[str]) -> None:
        """Read organisations the view has not seen yet (created since it was loaded)."""
        if org_ids:
            rows = await session.execute(select(Organisation).where(Organisation.id.in_(org_ids)))
            self._orgs.update((o.id, org_facts(o)) for o in rows.scalars())

    async def facts(self, events: list[Pending], now: datetime) -> RegistryFacts:
        """The batch's registry facts (``broker.policy.input.RegistryFacts``) from the view."""
        roles: dict[str, dict[str, set[str]]] = {}
        for pseudonym in {e.pseudonym for e in events}:
            for held in self._by_child.get(pseudonym, {}).values():
                if active(held.valid_from, held.valid_until, held.ended_at, now):
                    roles.setdefault(pseudonym, {}).setdefault(held.org, set()).add(held.role)
        unknown = {e.source_org for e in events} - self._orgs.keys()
        reports = [e for e in events if is_report(e)]
        social: dict[str, list[OrgFacts]] = {}
        if unknown or reports:
            async with self.sessions() as session:
                await self._know(session, unknown)
                munis = {m for e in reports for m in report_municipalities(e, self._orgs)}
                social = await social_services(session, munis)
            for found in social.values():
                self._orgs.update((o.id, o) for o in found)
        ids = {e.consent_id for e in events if e.consent_id}
        consents = {i: self._consents[i] for i in ids if i in self._consents}
        return RegistryFacts(roles, self._orgs, social, consents)

    def withdrawn(self, consent_ids: set[str]) -> bool:
        """Is any of these consents withdrawn (call ``current()`` first)?"""
        return any(
            (c := self._consents.get(i)) is not None and c.withdrawn_at is not None
            for i in consent_ids
        )


def _about_consent(change: RegistryRecord) -> bool:
    return isinstance(change, ConsentCreated | ConsentWithdrawn)


def _change_id(change: RegistryRecord) -> str:
    if isinstance(change, ConsentCreated | ConsentWithdrawn):
        return change.consent_id
    return change.relationship_id


async def _by_id(session: AsyncSession, model: Any, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    rows = await session.execute(select(model).where(model.id.in_(ids)))
    return {row.id: row for row in rows.scalars()}
