"""The transactional routing loop (exactly once from ``events.v1`` to deliveries and audit).

For each batch: decide (one OPA query; several smaller ones while OPA times out on one that
large), build the deliveries, routing summaries and audit records, re-check the consents the
allows relied on, then produce the records and commit the input offsets in one Kafka
transaction. The next batch is gathered (for up to ``SAMSYN_ROUTER_LINGER_MS`` after its first
event) and decided while one is built and committed. Any failure tears the clients down and
starts again from the committed offsets, so a batch is either wholly routed or not at all;
deterministic delivery ids let the read model drop the copies that a zombie instance might
still commit. A transaction that does not finish within ``SAMSYN_KAFKA_DEADLINE_S`` is such a
failure, and the progress watchdog (``broker.runtime.supervise``) tears down a session that
holds events without committing any.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.contracts import Contracts
from broker.infra import kafka, positions
from broker.infra.db import utcnow
from broker.policy.client import PolicyAnswer, PolicyClient, PolicyTimeout, PolicyUnavailable
from broker.policy.input import Pending, policy_input
from broker.privacy.aead import Unreadable
from broker.privacy.keyring import SubjectKeys
from broker.privacy.payloads import event_ad, join_envelope, open_personal
from broker.records import (
    AuditAction,
    AuditEntry,
    IngestedEvent,
    RoutingSummary,
    decode_ingested,
)
from broker.router.handover import Handover, client_id, transactional_id
from broker.router.outputs import Output, Outputs, erased_outputs, parked
from broker.router.registry_view import RegistryView
from broker.runtime.supervise import (
    Progress,
    Watch,
    close_within,
    keep_running,
    pause,
    within,
)

log = structlog.get_logger("samsyn.router")
GROUP = "samsyn-router"
TOPICS = (kafka.EVENTS,)

DECISIONS = Counter("samsyn_decisions_total", "Sharing decisions", ["outcome", "legal_ground"])
ROUTED = Counter("samsyn_events_routed_total", "Events routed")
POLICY_FAILURES = Counter("samsyn_policy_failures_total", "OPA queries that gave no decision")
EVENTS_PARKED = Counter(
    "samsyn_events_parked_total",
    "Events the policy could not decide after retries, parked on the dead-letter topic (alert)",
)
# Events whose output records are built between two turns of the event loop: about 3 ms.
BUILD_SLICE = 32
# Queries an event the policy faults on is held for before it is parked.
FAULT_ATTEMPTS = 3
BATCH_EVENTS = Histogram(
    "samsyn_router_batch_events",
    "Events per routed batch (one OPA query, one Kafka transaction)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
STAGE_SECONDS = Histogram(
    "samsyn_router_stage_seconds",
    "Time of one batch in each stage: registry (reading registry.v1 to its end), input "
    "(the policy input from the registry view), policy (OPA), outputs (projection, records), "
    "commit (the Kafka transaction)",
    ["stage"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# How long events wait for their routing: from the Kafka timestamp of the accepted event to
# the moment the router has it in hand (fetched) and to the commit of its outputs (committed).
EVENT_AGE = Histogram(
    "samsyn_router_event_age_seconds",
    "Age of an event (since its Kafka timestamp) when the router fetched it and when its "
    "routing was committed",
    ["at"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30, 60),
)
# The design's policy figure: the OPA query time of a batch over the events in it.
POLICY_PER_EVENT = Histogram(
    "samsyn_policy_seconds_per_event",
    "OPA query time of a batch divided by its events (policy time per event)",
    buckets=(
        0.0001,
        0.0002,
        0.0003,
        0.0005,
        0.00075,
        0.001,
        0.0015,
        0.002,
        0.003,
        0.004,
        0.005,
        0.0075,
        0.01,
        0.02,
        0.05,
        0.1,
    ),
)


def _observe_ages(at: str, records: list[Any]) -> None:
    now_ms = time.time() * 1000
    ages = EVENT_AGE.labels(at)
    for r in records:
        ages.observe(max(0.0, now_ms - r.timestamp) / 1000)


@dataclass
class Answered:
    """A batch the policy has answered, its output records not yet built."""

    offsets: dict[TopicPartition, int]
    records: list[Any]
    produced: list[Output]  # the records of events not decided (erased, parked)
    parts: list[tuple[list[Pending], PolicyAnswer, datetime]]  # one per OPA query
    keys: dict[str, AESGCM]


@dataclass
class Decided:
    """A batch decided and turned into output records, not yet committed."""

    offsets: dict[TopicPartition, int]
    records: list[Any]
    produced: list[Output]
    relied_on: set[str]


class Router:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        contracts: Contracts,
        policy: PolicyClient,
        keys: SubjectKeys,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.sessions = sessions
        self.contracts = contracts
        self.policy = policy
        # Organisations, relationships and consents, kept current by registry.v1.
        self.registry = RegistryView(settings, sessions)
        self.stopping = asyncio.Event()
        self.progress = Progress()
        # Events per OPA query: the whole batch, halved while OPA times out on a query that
        # large, grown back after each batch decided without a timeout.
        self._query_max = settings.router_batch_max

    async def run(self) -> None:
        """Route until stopped; restart the Kafka clients after any failure."""
        watch = Watch.group(self.progress, self.settings, GROUP, TOPICS)
        await keep_running(self._session, self.stopping, log, "router", watch)

    async def _session(self) -> None:
        s = self.settings
        consumer = kafka.consumer(
            s,
            group_id=GROUP,
            instance=s.router_instance,
            client_id=client_id(s.router_instance),  # how the other routers see it (handover)
            # A batch may wait for OPA for a long time; staying in the group meanwhile keeps the
            # partitions here instead of handing them to a router that would wait as well.
            max_poll_interval_ms=3_600_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # A router gone for good is noticed after the session timeout (the other routers
            # learn of the rebalance at their next heartbeat): README, Reliability. A member
            # that is alive but slow to rejoin during a rebalance keeps its place for longer.
            session_timeout_ms=s.router_session_timeout_ms,
            heartbeat_interval_ms=max(100, s.router_session_timeout_ms // 5),
            rebalance_timeout_ms=max(10_000, s.router_session_timeout_ms),
        )
        consumer.subscribe([s.topic(t) for t in TOPICS], listener=Handover(s, GROUP))
        producer = kafka.producer(
            s,
            transactional_id=transactional_id(s, s.router_instance),
            transaction_timeout_ms=s.router_transaction_timeout_ms,
            # Right after a commit Kafka answers the next transaction's first write with
            # CONCURRENT_TRANSACTIONS until its markers are written; at aiokafka's default
            # backoff (100 ms) that retry was the largest share of the routing delay.
            retry_backoff_ms=20,
        )
        try:
            await within(producer.start(), s.kafka_deadline_s, "starting the producer")
            await within(consumer.start(), s.kafka_deadline_s, "starting the consumer")
            try:
                registry = s.topic(kafka.REGISTRY)
                await self.registry.follow(
                    await within(
                        producer.partitions_for(registry), s.kafka_deadline_s, "registry metadata"
                    )
                )
                await self._pipeline(consumer, producer)
            finally:
                await close_within(self.registry.close(), log, "router registry consumer")
                await close_within(consumer.stop(), log, "router consumer")
        finally:
            await close_within(producer.stop(), log, "router producer")

    async def _pipeline(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        """Two batches at once: while batch k's output records are built and committed, batch
        k+1 is gathered and decided. The records are built in slices that let the event loop
        send k+1's query to OPA (another process) first, so OPA evaluates it meanwhile, not
        after. Batches are committed one at a time and in order, each in its own transaction
        with its input offsets, so exactly once is as before; a batch decided but not committed
        when anything fails is simply read again."""
        s = self.settings
        answered: Answered | None = None
        while not self.stopping.is_set():
            # With a batch waiting to be committed, take only what is there already.
            batch = await consumer.getmany(
                timeout_ms=0 if answered else 200, max_records=s.router_batch_max
            )
            records = [r for rs in batch.values() for r in rs]
            self.progress.hold(bool(records) or answered is not None)
            querying = (
                asyncio.create_task(self._gather_and_query(consumer, records)) if records else None
            )
            try:
                if answered is not None:
                    if not await self._commit(producer, await self._build(answered)):
                        return  # stopping while OPA was away: nothing committed
                    answered = None
                if querying is not None:
                    answered = await self.progress.meanwhile(querying)
                    if answered is None:
                        return
            finally:
                if querying is not None and not querying.done():
                    querying.cancel()
                    with contextlib.suppress(BaseException):
                        await querying

    async def _gather_and_query(
        self, consumer: AIOKafkaConsumer, records: list[Any]
    ) -> Answered | None:
        """Gather the batch that ``records`` begin for up to ``router_linger_ms`` (meanwhile the
        batch before it is built and committed), then ask the policy about it."""
        s = self.settings
        records = await kafka.gather(
            consumer, records, max_records=s.router_batch_max, linger_ms=s.router_linger_ms
        )
        _observe_ages("fetched", records)
        return await self._query(records, positions.next_offsets(records))

    async def _commit(self, producer: AIOKafkaProducer, decided: Decided) -> bool:
        """Re-check the consents the allows relied on, then produce the batch's records and
        commit its input offsets in one transaction. False when stopping before it could."""
        s = self.settings
        while await self._withdrawn(decided.relied_on):
            # A consent was withdrawn while deciding: decide the batch again.
            again = await self.progress.meanwhile(self._decide(decided.records, decided.offsets))
            if again is None:
                return False
            decided = again
        if not kafka.sender_alive(producer):
            raise kafka.SenderDied("the producer's sender task has ended; new clients needed")
        started = time.perf_counter()
        # The whole transaction within one deadline: a sender that died or waits for a
        # coordinator that is gone raises here instead of hanging.
        await within(self._transact(producer, decided), s.kafka_deadline_s, "the transaction")
        self.progress.moved()
        STAGE_SECONDS.labels("commit").observe(time.perf_counter() - started)
        BATCH_EVENTS.observe(len(decided.records))
        _observe_ages("committed", decided.records)
        self._count(decided.produced)
        return True

    async def _transact(self, producer: AIOKafkaProducer, decided: Decided) -> None:
        """Not producer.transaction(): its abort on an error waits for the coordinator that
        failed. The session is torn down instead; the next producer with this transactional id
        fences this one, and Kafka aborts its open transaction."""
        s = self.settings
        await producer.begin_transaction()
        await kafka.send_batched(
            producer, [(s.topic(out.topic), out.key, out.value) for out in decided.produced]
        )
        # Each offset names this router: whoever takes the partition over fences it (handover).
        offsets = {tp: (offset, s.router_instance) for tp, offset in decided.offsets.items()}
        await producer.send_offsets_to_transaction(offsets, s.topic(GROUP))
        await producer.commit_transaction()

    async def _decide(
        self, records: list[Any], offsets: dict[TopicPartition, int]
    ) -> Decided | None:
        """Decide every event of the batch with OPA and build its output records. None when
        stopping while OPA was away (nothing is decided then)."""
        answered = await self._query(records, offsets)
        return None if answered is None else await self._build(answered)

    async def _query(
        self, records: list[Any], offsets: dict[TopicPartition, int]
    ) -> Answered | None:
        """Decide every event of the batch with OPA. None when stopping while OPA was away."""
        ingested = [e for e in (self._ingested(r.value) for r in records) if e is not None]
        events, erased, keys = await self._open(ingested)
        started = time.perf_counter()
        # Every registry change answered before these events were accepted is in the view now.
        await self.registry.current()
        STAGE_SECONDS.labels("registry").observe(time.perf_counter() - started)
        produced: list[Output] = erased_outputs(erased, utcnow())
        parts: list[tuple[list[Pending], PolicyAnswer, datetime]] = []
        done = 0
        timed_out = False
        backoff = 0.2
        fault_attempts: dict[str, int] = {}
        while done < len(events) or not events:
            if self.stopping.is_set():
                return None
            part = events[done : done + self._query_max]
            now = utcnow()
            started = time.perf_counter()
            facts = await self.registry.facts(part, now)
            query = policy_input(self.contracts, part, now, facts)
            STAGE_SECONDS.labels("input").observe(time.perf_counter() - started)
            try:
                answer = await self.policy.decide(query)
            except PolicyTimeout as err:
                POLICY_FAILURES.inc()
                if len(part) > 1:
                    # Too large a query for OPA's pace just now: ask about fewer events at a
                    # time (each still in its own query; the batch stays one transaction).
                    self._query_max = max(1, len(part) // 2)
                    timed_out = True
                    log.warning(
                        "OPA timed out; smaller queries", events=len(part), now=self._query_max
                    )
                    continue
                log.warning("no policy decision; holding the batch", error=str(err))
                await pause(self.stopping, backoff + random.uniform(0, backoff / 2))  # noqa: S311
                backoff = min(backoff * 2, 5.0)
                continue
            except PolicyUnavailable as err:
                POLICY_FAILURES.inc()
                log.warning(
                    "no policy decision; holding the batch",
                    error=str(err),
                    events=len(part),
                    retry_in_s=backoff,
                )
                await pause(self.stopping, backoff + random.uniform(0, backoff / 2))  # noqa: S311
                backoff = min(backoff * 2, 5.0)
                continue
            if answer.faulted:
                # The policy could not decide some events of this part (a fault of theirs, not
                # of the policy data): hold them for a few queries, then park them with an
                # audit record, and decide the rest without them.
                faulty = [part[int(ref)] for ref in sorted(answer.faulted, key=int)]
                for ev in faulty:
                    fault_attempts[ev.event_id] = fault_attempts.get(ev.event_id, 0) + 1
                POLICY_FAILURES.inc()
                if min(fault_attempts[ev.event_id] for ev in faulty) < FAULT_ATTEMPTS:
                    log.warning("policy fault for events; holding them", events=len(faulty))
                    await pause(self.stopping, backoff + random.uniform(0, backoff / 2))  # noqa: S311
                    backoff = min(backoff * 2, 5.0)
                    continue
                for ev in faulty:
                    events.remove(ev)
                    produced += parked(
                        ev, answer.faulted[str(part.index(ev))], answer, now, keys[ev.pseudonym]
                    )
                EVENTS_PARKED.inc(len(faulty))
                log.error("policy fault persists; events parked", events=len(faulty))
                continue
            STAGE_SECONDS.labels("policy").observe(answer.seconds)
            if part:
                POLICY_PER_EVENT.observe(answer.seconds / len(part))
            parts.append((part, answer, now))
            done += len(part)
            if not events:
                break
        if not timed_out:
            self._query_max = min(self.settings.router_batch_max, self._query_max * 2)
        return Answered(offsets, records, produced, parts, keys)

    async def _build(self, answered: Answered) -> Decided:
        """The output records of an answered batch, built in slices of ``BUILD_SLICE`` events
        with the event loop's other work in between (the next batch's query among it)."""
        spent = 0.0
        produced = list(answered.produced)
        relied_on: set[str] = set()
        for part, answer, now in answered.parts:
            built = Outputs(self.contracts, answer, now, answered.keys)
            for start in range(0, len(part), BUILD_SLICE):
                await asyncio.sleep(0)
                started = time.perf_counter()
                for ref in range(start, min(start + BUILD_SLICE, len(part))):
                    built.add(ref, part[ref])
                spent += time.perf_counter() - started
            produced += built.records
            relied_on |= built.relied_on
        STAGE_SECONDS.labels("outputs").observe(spent)
        return Decided(answered.offsets, answered.records, produced, relied_on)

    async def _withdrawn(self, consent_ids: set[str]) -> bool:
        if not consent_ids:
            return False
        await self.registry.current()
        return self.registry.withdrawn(consent_ids)

    @staticmethod
    def _ingested(raw: bytes | None) -> IngestedEvent | None:
        try:
            return decode_ingested(raw or b"")
        except msgspec.DecodeError as err:  # ValidationError too: nothing is routed half-read
            # The error names the field, never its value: the record may hold personal data.
            log.error("unreadable record in events topic; skipped", error=str(err))
            return None

    async def _open(
        self, ingested: list[IngestedEvent]
    ) -> tuple[list[Pending], list[IngestedEvent], dict[str, AESGCM]]:
        """The events with their sealed part opened (the policy input needs the child's age,
        the projection the data), those that do not open (their child erased), and the keys."""
        keys = await self.keys.for_reading({e.subject_pseudonym for e in ingested})
        events: list[Pending] = []
        erased: list[IngestedEvent] = []
        for e in ingested:
            ad = event_ad(e.source_org, str(e.envelope["id"]))
            try:
                personal = open_personal(keys.get(e.subject_pseudonym), e.sealed, ad)
            except Unreadable:
                erased.append(e)
                continue
            events.append(
                Pending(
                    source_org=e.source_org,
                    source_kind=e.source_kind,
                    pseudonym=e.subject_pseudonym,
                    envelope=join_envelope(e.envelope, personal),
                )
            )
        return events, erased, keys

    @staticmethod
    def _count(produced: list[Output]) -> None:
        # Counted per batch, then added: a labelled increment per decision took a twentieth of
        # the router's CPU.
        decisions: collections.Counter[tuple[str, str]] = collections.Counter()
        routed = 0
        decision = AuditAction.DECISION.value  # an enum member's value is a property
        for out in produced:
            value = out.value
            # Exact types, cheaper than isinstance: neither record type has subclasses.
            if type(value) is AuditEntry:
                if value.action == decision:
                    decisions[value.outcome, value.legal_ground or "-"] += 1
            elif type(value) is RoutingSummary:
                routed += 1
        for labels, n in decisions.items():
            DECISIONS.labels(*labels).inc(n)
        if routed:
            ROUTED.inc(routed)
