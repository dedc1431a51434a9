"""Queries over the sealed chain: search, verify, and a child's log extract."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.chain import HASHED_FIELDS, OPTIONAL_HASHED_FIELDS, Verdict, verify
from broker.audit.models import AuditCheckpoint, AuditRecord
from broker.runtime.metrics import AUDIT_VERIFY

# The hashed fields and the two that chain them.
RECORD_FIELDS = (*HASHED_FIELDS, *OPTIONAL_HASHED_FIELDS, "prev_hash", "hash")


def as_dict(rec: AuditRecord) -> dict[str, Any]:
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
    after = 0
    while True:
        rows = list(
            (
                await session.execute(
                    select(AuditRecord)
                    .where(AuditRecord.seq > after)
                    .order_by(AuditRecord.seq)
                    .limit(batch)
                )
            ).scalars()
        )
        if not rows:
            return
        for rec in rows:
            yield as_dict(rec)
        after = rows[-1].seq


async def verify_chain(
    session: AsyncSession, public_keys: Mapping[str, Ed25519PublicKey]
) -> Verdict:
    records = [r async for r in _chain(session)]
    checkpoints = [
        {"seq": c.seq, "head_hash": c.head_hash, "signature": c.signature, "key_id": c.key_id}
        for c in (
            await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
        ).scalars()
    ]
    verdict = verify(records, checkpoints, public_keys)
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


async def export(session: AsyncSession) -> dict[str, Any]:
    """The whole chain with its checkpoints, for offline verification (``samsyn audit-verify``)."""
    return {
        "records": [r async for r in _chain(session)],
        "checkpoints": [
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
        ],
    }
