"""Read ``audit.v1`` in order and seal each record into the chain (one writer per deployment).

A record that does not decode as an :class:`~broker.records.AuditEntry` stops the sealer (it
starts again from the committed offset): the chain never skips a record it cannot read.
Idempotent: a record id already sealed is skipped, so re-reading the topic after a crash yields
the same chain. The positions are saved in the same SQL transaction. Every N records or T
seconds the head is signed (a checkpoint).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import msgspec
import structlog
from aiokafka.structs import TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.chain import GENESIS, record_hash, sign_checkpoint
from broker.audit.followup import projection
from broker.audit.followup.queue import refresh_overdue
from broker.audit.models import AUDIT_RECORDS, AuditCheckpoint, AuditRecord
from broker.config import Settings
from broker.infra import kafka, positions
from broker.infra.bulk import insert_rows, stored_keys, written_optimistically
from broker.infra.db import utcnow
from broker.records import AuditEntry, decode_audit
from broker.runtime.supervise import (
    Progress,
    Watch,
    close_within,
    keep_running,
    within,
)

log = structlog.get_logger("samsyn.sealer")
GROUP = "samsyn-sealer"
TOPICS = (kafka.AUDIT,)
CHAIN_LENGTH = Gauge("samsyn_audit_chain_length", "Records sealed into the audit chain")


class Sealer:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        key: Ed25519PrivateKey,
        key_id: str,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.key = key
        self.key_id = key_id
        self.stopping = asyncio.Event()
        self.progress = Progress()

    async def run(self) -> None:
        watch = Watch.group(self.progress, self.settings, GROUP, TOPICS)
        await keep_running(self._session, self.stopping, log, "sealer", watch)

    async def _session(self) -> None:
        await self.catch_up()
        consumer = kafka.consumer(
            self.settings, group_id=GROUP, instance=self.settings.worker_instance
        )
        positions.subscribe(consumer, self.sessions, self.settings, GROUP, *TOPICS)
        marks = positions.LagMarks(consumer, self.settings.kafka_deadline_s)
        last_checkpoint = time.monotonic()
        try:
            await within(consumer.start(), self.settings.kafka_deadline_s, "starting the consumer")
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=2000)
                raw = [r for rs in batch.values() for r in rs]
                records = [decode_audit(r.value) for r in raw]
                self.progress.hold(bool(records))
                due = time.monotonic() - last_checkpoint >= self.settings.audit_checkpoint_seconds
                if records or due:
                    await self.store_batch(records, positions.next_offsets(raw), due)
                    if due:
                        last_checkpoint = time.monotonic()
                if records:
                    await marks.stored()
                    self.progress.moved()
                else:
                    await marks.idle()
        finally:
            await close_within(consumer.stop(), log, "sealer consumer")

    async def store_batch(
        self, records: list[AuditEntry], offsets: dict[TopicPartition, int], due: bool
    ) -> None:
        """Seal a batch and save the positions after it in one transaction (written as if none
        of its records were sealed before: ``written_optimistically``); when ``due``, sign the
        head and refresh the overdue reviews in it too."""

        async def write(look_first: bool) -> None:
            async with self.sessions() as session, session.begin():
                await self.seal(session, records, look_first=look_first)
                await positions.save(session, self.settings.topic(GROUP), offsets)
                if due:
                    await self.checkpoint(session)
                    await refresh_overdue(
                        session, utcnow(), self.settings.audit_review_overdue_days
                    )

        await written_optimistically(write)

    async def seal(
        self, session: AsyncSession, records: list[AuditEntry], *, look_first: bool = True
    ) -> int:
        """Chain and store the records not sealed before (the ones already stored are looked up
        first; not ``look_first``, a record stored before fails the insert: IntegrityError)."""
        if not records:
            return 0
        # The head and the last checkpoint in one round trip (only this writer adds to them).
        head = (
            await session.execute(
                select(
                    AuditRecord.seq,
                    AuditRecord.hash,
                    select(func.max(AuditCheckpoint.seq)).scalar_subquery(),
                )
                .order_by(AuditRecord.seq.desc())
                .limit(1)
            )
        ).first()
        # An empty chain has no checkpoint either (a checkpoint signs a record).
        seq, prev, last_cp = (head[0], head[1], head[2] or 0) if head else (0, GENESIS, 0)
        ids = [r.record_id for r in records]
        known: set[str] = (
            await stored_keys(session, AUDIT_RECORDS.c.record_id, ids) if look_first else set()
        )
        rows: list[dict[str, Any]] = []
        # The records of a router batch share one time: parsed once.
        times: dict[str, datetime] = {}
        for entry in records:
            if entry.record_id in known:
                continue
            known.add(entry.record_id)
            seq += 1
            # One dict per record, hashed as the record says and then completed as its row.
            row = msgspec.structs.asdict(entry)
            row["seq"] = seq
            digest = record_hash(prev, row)
            moment = times.get(entry.time)
            if moment is None:
                moment = times[entry.time] = datetime.fromisoformat(entry.time)
            row["time"], row["prev_hash"], row["hash"] = moment, prev, digest
            rows.append(row)
            prev = digest
        sealed = len(rows)
        if rows:
            await insert_rows(session, AUDIT_RECORDS, rows)
            await projection.project(session, rows, self.settings.audit_office_hours)
        if sealed:
            CHAIN_LENGTH.set(seq)
        if sealed and seq - last_cp >= self.settings.audit_checkpoint_every:
            await session.flush()
            await self.checkpoint(session)
        return sealed

    async def catch_up(self) -> None:
        """Bring the follow-up tables up to the chain's head (records sealed before they
        existed), a batch per transaction."""
        while True:
            async with self.sessions() as session, session.begin():
                if not await projection.catch_up(session, self.settings.audit_office_hours):
                    return
            self.progress.moved()  # a long catch-up is work, not a stall

    async def checkpoint(self, session: AsyncSession) -> bool:
        """Sign the current head unless it is signed already."""
        await session.flush()
        head = (
            await session.execute(
                select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
            )
        ).first()
        if head is None:
            return False
        if await session.get(AuditCheckpoint, head[0]) is not None:
            return False
        session.add(
            AuditCheckpoint(
                seq=head[0],
                head_hash=head[1],
                signed_at=utcnow(),
                key_id=self.key_id,
                signature=sign_checkpoint(self.key, head[0], head[1]),
            )
        )
        return True
