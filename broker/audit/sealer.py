"""Read ``audit.v1`` in order and seal each record into the chain (one writer per deployment).

Idempotent: a record id already sealed is skipped, so re-reading the topic after a crash yields
the same chain. Offsets are committed after the SQL commit. Every N records or T seconds the
head is signed (a checkpoint).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import Gauge
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.chain import GENESIS, record_hash, sign_checkpoint
from broker.audit.models import AuditCheckpoint, AuditRecord
from broker.config import Settings
from broker.infra import kafka
from broker.infra.db import utcnow
from broker.runtime.supervise import keep_running

log = structlog.get_logger("samsyn.sealer")
GROUP = "samsyn-sealer"
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

    async def run(self) -> None:
        await keep_running(self._session, self.stopping, log, "sealer")

    async def _session(self) -> None:
        consumer = kafka.consumer(self.settings, kafka.AUDIT, group_id=GROUP)
        await consumer.start()
        last_checkpoint = time.monotonic()
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=2000)
                records = [r.value for rs in batch.values() for r in rs]
                due = time.monotonic() - last_checkpoint >= self.settings.audit_checkpoint_seconds
                if not records and not due:
                    continue
                async with self.sessions() as session, session.begin():
                    await self.seal(session, records)
                    if due:
                        await self.checkpoint(session)
                        last_checkpoint = time.monotonic()
                if records:
                    await consumer.commit()
        finally:
            await consumer.stop()

    async def seal(self, session: AsyncSession, records: list[dict[str, Any]]) -> int:
        if not records:
            return 0
        head = (
            await session.execute(
                select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
            )
        ).first()
        seq, prev = (head[0], head[1]) if head else (0, GENESIS)
        ids = [r["record_id"] for r in records]
        known = set(
            (
                await session.execute(
                    select(AuditRecord.record_id).where(AuditRecord.record_id.in_(ids))
                )
            ).scalars()
        )
        rows: list[dict[str, Any]] = []
        for raw in records:
            if raw["record_id"] in known:
                continue
            known.add(raw["record_id"])
            seq += 1
            rec = {**raw, "seq": seq}
            digest = record_hash(prev, rec)
            rows.append(
                {
                    "seq": seq,
                    "record_id": raw["record_id"],
                    "time": datetime.fromisoformat(raw["time"]),
                    "actor_org": raw.get("actor_org"),
                    "actor_client": raw.get("actor_client"),
                    "action": raw["action"],
                    "subject_pseudonym": raw.get("subject_pseudonym"),
                    "event_id": raw.get("event_id"),
                    "recipient_org": raw.get("recipient_org"),
                    "outcome": raw["outcome"],
                    "legal_ground": raw.get("legal_ground"),
                    "purpose": raw.get("purpose"),
                    "categories_shared": raw.get("categories_shared") or [],
                    "categories_withheld": raw.get("categories_withheld") or [],
                    "reasons": raw.get("reasons") or [],
                    "policy_revision": raw.get("policy_revision"),
                    "decision_id": raw.get("decision_id"),
                    "statute": raw.get("statute"),
                    "review": raw.get("review"),
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        sealed = len(rows)
        if rows:
            # One bulk INSERT (executemany) rather than an ORM object per record.
            await session.execute(insert(AuditRecord), rows)
        if sealed:
            CHAIN_LENGTH.set(seq)
        need = self.settings.audit_checkpoint_every
        last_cp = (await session.execute(select(func.max(AuditCheckpoint.seq)))).scalar() or 0
        if sealed and seq - last_cp >= need:
            await session.flush()
            await self.checkpoint(session)
        return sealed

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
