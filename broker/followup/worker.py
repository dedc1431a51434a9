"""The follow-up counter: reads accepted events (``events.v1``) and the audit trail
(``audit.v1``: decisions, consents, nödöppningar) and adds them to the follow-up store.

A batch is applied in one SQL transaction together with its consumer positions (as the
materializer keeps its own); Kafka is told of them for the lag (``positions.LagMarks``). Should
a batch be read again all the same, each child's ledger remembers the facts it has counted, so
nothing counts twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.followup import store
from broker.followup.store import LedgerTokens
from broker.infra import kafka, positions
from broker.privacy.keyring import SubjectKeys
from broker.records import decode_audit, decode_ingested
from broker.runtime.supervise import Progress, Watch, close_within, keep_running, within

log = structlog.get_logger("samsyn.followup")
GROUP = "samsyn-followup"
TOPICS = (kafka.EVENTS, kafka.AUDIT)


def decode(topic: str, raw: bytes | None) -> tuple[str, dict[str, Any]]:
    """("event" | "audit", the record as plain data); raises ``msgspec.DecodeError`` for a
    record that is not what its topic holds (the batch fails and is read again)."""
    if topic.endswith(kafka.EVENTS):
        return "event", msgspec.to_builtins(decode_ingested(raw or b""))
    return "audit", msgspec.to_builtins(decode_audit(raw or b""))


class Followup:
    """The follow-up worker (``followup``): counts what it reads; its readiness check is named
    after it."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        tokens: LedgerTokens,
        subject_keys: SubjectKeys,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.tokens = tokens
        self.subject_keys = subject_keys
        self.stopping = asyncio.Event()
        self.progress = Progress()

    async def run(self) -> None:
        watch = Watch.group(self.progress, self.settings, GROUP, TOPICS)
        await keep_running(self._session, self.stopping, log, "followup", watch)

    async def _session(self) -> None:
        consumer = kafka.consumer(
            self.settings, group_id=GROUP, instance=self.settings.worker_instance
        )
        positions.subscribe(consumer, self.sessions, self.settings, GROUP, *TOPICS)
        marks = positions.LagMarks(consumer, self.settings.kafka_deadline_s)
        try:
            await within(consumer.start(), self.settings.kafka_deadline_s, "starting the consumer")
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                records = sorted(
                    (r for rs in batch.values() for r in rs), key=lambda r: r.timestamp
                )
                self.progress.hold(bool(records))
                if not records:
                    await marks.idle()
                    continue
                decoded = [decode(r.topic, r.value) for r in records]
                # Before the transaction: a key made for a child commits on its own.
                keys = await self.subject_keys.for_writing(store.pseudonyms(decoded))
                async with self.sessions() as session, session.begin():
                    await store.apply(session, self.tokens, keys, decoded)
                    await store.forget_expired(session)
                    await positions.save(
                        session, self.settings.topic(GROUP), positions.next_offsets(records)
                    )
                await marks.stored()
                self.progress.moved()
        finally:
            await close_within(consumer.stop(), log, "followup consumer")
