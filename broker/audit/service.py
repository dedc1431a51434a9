"""Queries over the sealed chain: search, verify, and a child's log extract."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.chain import HASHED_FIELDS, OPTIONAL_HASHED_FIELDS, ChainWalk, Verdict
from broker.audit.models import AuditCheckpoint, AuditRecord
from broker.runtime.metrics import AUDIT_VERIFY

# The hashed fields and the two that chain them.
RECORD_FIELDS = (*HASHED_FIELDS, *OPTIONAL_HASHED_FIELDS, "prev_hash", "hash")


def as_dict(rec: Any) -> dict[str, Any]:
    """An audit record (a model or a row of its columns) as the API and the export show it."""
    out = {f: getattr(rec, f) for f in RECORD_FIELDS}
    out["time"] = rec.time.isoformat()
    return out


def search(
    *,
    pseudonyms: list[str] | None = None,
    org: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    outcome: str | None = None,
    action: str | None = None,
    legal_ground: str | None = None,
    after_seq: int = 0,
) -> Select[AuditRecord]:
    q = select(AuditRecord).where(AuditRecord.seq > after_seq)
    if pseudonyms is not None:
        q = q.where(AuditRecord.subject_pseudonym.in_(pseudonyms))
    if org:
        q = q.where(or_(AuditRecord.actor_org == org, AuditRecord.recipient_org == org))
    if start:
        q = q.where(AuditRecord.time >= start)
    if end:
        q = q.where(AuditRecord.time < end)
    if outcome:
        q = q.where(AuditRecord.outcome == outcome)
    if action:
        q = q.where(AuditRecord.action == action)
    if legal_ground:
        q = q.where(AuditRecord.legal_ground == legal_ground)
    return q.order_by(AuditRecord.seq)


async def _chain(session: AsyncSession, batch: int = 5000) -> AsyncIterator[dict[str, Any]]:
    """Every sealed record in seq order, a page at a time (plain rows, nothing kept), so a chain
    of any length streams in constant memory."""
    columns = [getattr(AuditRecord, f) for f in RECORD_FIELDS]
    after = 0
    while True:
        rows = (
            await session.execute(
                select(*columns)
                .where(AuditRecord.seq > after)
                .order_by(AuditRecord.seq)
                .limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield as_dict(row)
        after = rows[-1].seq


async def _checkpoints(session: AsyncSession) -> list[dict[str, Any]]:
    return [
        {
            "seq": c.seq,
            "head_hash": c.head_hash,
            "signature": c.signature,
            "key_id": c.key_id,
            "signed_at": c.signed_at.isoformat(),
        }
        for c in (
            await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
        ).scalars()
    ]


async def verify_chain(
    session: AsyncSession, public_keys: Mapping[str, Ed25519PublicKey]
) -> Verdict:
    """Verify the sealed chain as it is read: memory stays flat whatever its length."""
    walk = ChainWalk(await _checkpoints(session))
    verdict: Verdict | None = None
    async for rec in _chain(session):
        if (verdict := walk.step(rec)) is not None:
            break
    verdict = verdict or walk.finish(public_keys)
    AUDIT_VERIFY.labels("ok" if verdict.ok else "failed").inc()
    return verdict


async def archivable_checkpoint(session: AsyncSession, cutoff: datetime) -> AuditCheckpoint | None:
    """The last checkpoint whose head record is older than ``cutoff`` (the retention period):
    records 1 to its seq form a closed segment that may be archived with it."""
    q = (
        select(AuditCheckpoint)
        .join(AuditRecord, AuditRecord.seq == AuditCheckpoint.seq)
        .where(AuditRecord.time < cutoff)
        .order_by(AuditCheckpoint.seq.desc())
        .limit(1)
    )
    return (await session.execute(q)).scalars().first()


async def export(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[bytes]:
    """The whole chain with its checkpoints as one JSON document, written as it is read, for
    offline verification (``samsyn audit-verify``, which parses it as a stream too).
    Checkpoints come first: a verifier needs their seqs before it walks the records."""
    async with sessions() as session:
        checkpoints = await _checkpoints(session)
        yield b'{"checkpoints":' + json.dumps(checkpoints).encode() + b',"records":['
        separator = b""
        async for rec in _chain(session):
            yield separator + json.dumps(rec, ensure_ascii=False).encode()
            separator = b","
        yield b"]}"
