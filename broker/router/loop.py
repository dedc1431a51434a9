"""The transactional routing loop (exactly once from ``events.v1`` to deliveries and audit).

For each batch: decide (one OPA query), re-check the consents the allows relied on, then produce
the deliveries, routing summaries and audit records and commit the input offsets in one Kafka
transaction. Any failure tears the clients down and starts again from the committed offsets, so
a batch is either wholly routed or not at all; deterministic delivery ids let the read model drop
the copies that a zombie instance might still commit.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import structlog
from aiokafka.structs import TopicPartition
from prometheus_client import Counter, Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker import kafka
from broker.config import Settings
from broker.contracts import Contracts
from broker.db import utcnow
from broker.registry.models import Consent
from broker.router.batch import Output, Pending, build_input, outputs
from broker.router.policy import PolicyClient, PolicyUnavailable
from broker.supervise import keep_running, pause

log = structlog.get_logger("samsyn.router")
GROUP = "samsyn-router"

DECISIONS = Counter("samsyn_decisions_total", "Sharing decisions", ["outcome", "legal_ground"])
ROUTED = Counter("samsyn_events_routed_total", "Events routed")
POLICY_FAILURES = Counter("samsyn_policy_failures_total", "OPA queries that gave no decision")
BATCH_EVENTS = Histogram(
    "samsyn_router_batch_events",
    "Events per routed batch (one OPA query, one Kafka transaction)",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
STAGE_SECONDS = Histogram(
    "samsyn_router_stage_seconds",
    "Time of one batch in each stage: input (registry reads), policy (OPA), outputs "
    "(projection, records), commit (the Kafka transaction)",
    ["stage"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
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


class Router:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        contracts: Contracts,
        policy: PolicyClient,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.contracts = contracts
        self.policy = policy
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        """Route until stopped; restart the Kafka clients after any failure."""
        await keep_running(self._session, self.stopping, log, "router")

    async def _session(self) -> None:
        s = self.settings
        consumer = kafka.consumer(
            s,
            kafka.EVENTS,
            group_id=GROUP,
            # A batch may wait for OPA for a long time; staying in the group meanwhile keeps the
            # partitions here instead of handing them to a router that would wait as well.
            max_poll_interval_ms=3_600_000,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        producer = kafka.producer(
            s,
            transactional_id=s.topic(f"samsyn-{s.router_instance}"),
            transaction_timeout_ms=s.router_transaction_timeout_ms,
        )
        await producer.start()
        try:
            await consumer.start()
            try:
                while not self.stopping.is_set():
                    batch = await consumer.getmany(timeout_ms=200, max_records=s.router_batch_max)
                    records = [r for rs in batch.values() for r in rs]
                    if not records:
                        continue
                    produced = await self._route(records)
                    if produced is None:
                        return  # stopping while OPA was away: nothing committed
                    offsets: dict[TopicPartition, int] = {
                        tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs
                    }
                    started = time.perf_counter()
                    async with producer.transaction():
                        for out in produced:
                            await producer.send(s.topic(out.topic), out.value, key=out.key)
                        await producer.send_offsets_to_transaction(offsets, s.topic(GROUP))
                    STAGE_SECONDS.labels("commit").observe(time.perf_counter() - started)
                    BATCH_EVENTS.observe(len(records))
                    self._count(produced)
            finally:
                await consumer.stop()
        finally:
            await producer.stop()

    async def _route(self, records: list[Any]) -> list[Output] | None:
        events = [e for e in (self._pending(r.value) for r in records) if e is not None]
        backoff = 0.2
        while not self.stopping.is_set():
            now = utcnow()
            started = time.perf_counter()
            async with self.sessions() as session:
                policy_input = await build_input(session, self.contracts, events, now)
            STAGE_SECONDS.labels("input").observe(time.perf_counter() - started)
            try:
                answer = await self.policy.decide(policy_input)
            except PolicyUnavailable as err:
                POLICY_FAILURES.inc()
                log.warning(
                    "no policy decision; holding the batch",
                    error=str(err),
                    events=len(events),
                    retry_in_s=backoff,
                )
                await pause(self.stopping, backoff + random.uniform(0, backoff / 2))  # noqa: S311
                backoff = min(backoff * 2, 5.0)
                continue
            STAGE_SECONDS.labels("policy").observe(answer.seconds)
            if events:
                POLICY_PER_EVENT.observe(answer.seconds / len(events))
            started = time.perf_counter()
            produced, relied_on = outputs(self.contracts, events, answer, now)
            STAGE_SECONDS.labels("outputs").observe(time.perf_counter() - started)
            if await self._withdrawn(relied_on):
                continue  # a consent was withdrawn while deciding: decide again
            return produced
        return None

    async def _withdrawn(self, consent_ids: set[str]) -> bool:
        if not consent_ids:
            return False
        async with self.sessions() as session:
            rows = await session.execute(
                select(Consent.id).where(
                    Consent.id.in_(consent_ids), Consent.withdrawn_at.is_not(None)
                )
            )
            return rows.first() is not None

    @staticmethod
    def _pending(value: Any) -> Pending | None:
        try:
            return Pending(
                source_org=value["source_org"],
                source_kind=value["source_kind"],
                report_municipality=value.get("report_municipality"),
                pseudonym=value["subject_pseudonym"],
                envelope=value["envelope"],
            )
        except (KeyError, TypeError):
            log.error("unreadable record in events topic; skipped", value=str(value)[:200])
            return None

    @staticmethod
    def _count(produced: list[Output]) -> None:
        for out in produced:
            if out.topic == kafka.AUDIT and out.value["action"] == "decision":
                DECISIONS.labels(out.value["outcome"], out.value["legal_ground"] or "-").inc()
            elif out.value.get("kind") == "routed":
                ROUTED.inc()
