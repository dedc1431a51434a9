"""The overview of a period: what was decided, read, opened in an emergency and refused, what
awaits review, and the chain's state — from the daily summary, never the whole trail."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.chain import ANY_KEY, checkpoint_message
from broker.audit.followup.models import AuditDaily, ReviewItem
from broker.audit.followup.projection import ACTOR, RECIPIENT
from broker.audit.followup.queue import overdue_before
from broker.audit.followup.vocabulary import DECISION, EMERGENCY, READS
from broker.audit.models import AuditCheckpoint, AuditRecord

# The series of the charts, in stacking order: (key, Swedish / English label).
SERIES = (
    ("allowed", "Delade / Disclosed"),
    ("denied", "Nekade / Denied"),
    ("reads", "Läsningar / Reads"),
    ("emergency", "Nödöppningar / Emergency"),
    ("refused", "Avvisade / Refused"),
)


def series_of(action: str, outcome: str) -> str | None:
    """Which chart series a summary row counts towards, if any."""
    if outcome == "refused":
        return "refused"
    if action == DECISION:
        return "allowed" if outcome == "allow" else "denied"
    if action in READS:
        return "reads"
    if action == EMERGENCY:
        return "emergency"
    return None


@dataclass
class Overview:
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(dict(SERIES), 0))
    grounds: dict[str, int] = field(default_factory=dict)
    per_day: dict[date, dict[str, int]] = field(default_factory=dict)
    per_org: dict[str, dict[str, int]] = field(default_factory=dict)
    marked_for_review: int = 0
    open_items: int = 0
    overdue_items: int = 0


@dataclass(frozen=True)
class ChainState:
    records: int
    head_time: datetime | None
    checkpoint_seq: int | None
    checkpoint_at: datetime | None
    # The last checkpoint's signature is valid and it signs the hash stored at its seq.
    checkpoint_ok: bool

    def checkpoint_age_s(self, now: datetime) -> float | None:
        return (now - self.checkpoint_at).total_seconds() if self.checkpoint_at else None


def org_filter(org: str) -> ColumnElement[bool]:
    """Every record once (its actor's row); or those the organisation took part in, as actor
    or as a decision's recipient (a decision has no recipient's row for its own source)."""
    return AuditDaily.side == ACTOR if not org else AuditDaily.org == org


async def overview(
    session: AsyncSession,
    first: date,
    last: date,
    org: str,
    *,
    now: datetime,
    overdue_days: int,
    top_orgs: int = 15,
    per_org: bool = True,
) -> Overview:
    """The figures of the period; ``per_org`` False leaves out the per-organisation chart's
    (the report has no charts)."""
    out = Overview()
    span = (AuditDaily.day >= first, AuditDaily.day <= last, org_filter(org))
    total = func.sum(AuditDaily.count)
    out.per_day = {d: dict.fromkeys(dict(SERIES), 0) for d in _days(first, last)}
    by_day = select(AuditDaily.day, AuditDaily.action, AuditDaily.outcome, total).where(*span)
    for day, action, outcome, n in await session.execute(
        by_day.group_by(AuditDaily.day, AuditDaily.action, AuditDaily.outcome)
    ):
        key = series_of(action, outcome)
        if key and day in out.per_day:
            out.per_day[day][key] += int(n)
            out.totals[key] += int(n)
    grounds = select(AuditDaily.legal_ground, total).where(
        *span, AuditDaily.action == DECISION, AuditDaily.outcome == "allow"
    )
    out.grounds = {
        g or "–": int(n)
        for g, n in await session.execute(grounds.group_by(AuditDaily.legal_ground))
    }
    if per_org:
        out.per_org = await _per_org(session, first, last, org, top_orgs)
    out.marked_for_review, out.open_items, out.overdue_items = await _review_counts(
        session, first, last, org, now=now, overdue_days=overdue_days
    )
    return out


async def _per_org(
    session: AsyncSession, first: date, last: date, org: str, top_orgs: int
) -> dict[str, dict[str, int]]:
    total = func.sum(AuditDaily.count)
    # An organisation's bar: what it read, opened and was refused as actor; what it was given or
    # denied as recipient (a source is not credited with its recipients' decisions).
    per_org: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(dict(SERIES), 0))
    credited = or_(
        and_(AuditDaily.side == ACTOR, AuditDaily.action != DECISION),
        and_(AuditDaily.side == RECIPIENT, AuditDaily.action == DECISION),
    )
    q = select(AuditDaily.org, AuditDaily.action, AuditDaily.outcome, total).where(
        AuditDaily.day >= first, AuditDaily.day <= last, credited, AuditDaily.org != ""
    )
    if org:
        q = q.where(AuditDaily.org == org)
    for who, action, outcome, n in await session.execute(
        q.group_by(AuditDaily.org, AuditDaily.action, AuditDaily.outcome)
    ):
        key = series_of(action, outcome)
        if key:
            per_org[who][key] += int(n)
    ranked = sorted(per_org.items(), key=lambda kv: -sum(kv[1].values()))
    return dict(ranked[:top_orgs])


async def _review_counts(
    session: AsyncSession, first: date, last: date, org: str, *, now: datetime, overdue_days: int
) -> tuple[int, int, int]:
    """Disclosures marked for review in the period; open and overdue items of any time."""
    mine = or_(ReviewItem.actor_org == org, ReviewItem.recipient_org == org) if org else true()
    in_period = select(func.count()).where(
        mine,
        ReviewItem.action == DECISION,
        ReviewItem.time >= datetime.combine(first, time(), UTC),
        ReviewItem.time < datetime.combine(last + timedelta(days=1), time(), UTC),
    )
    marked = int(await session.scalar(in_period) or 0)
    still_open = (mine, ReviewItem.verdict.is_(None))
    open_items = int(await session.scalar(select(func.count()).where(*still_open)) or 0)
    overdue = int(
        await session.scalar(
            select(func.count()).where(
                *still_open, ReviewItem.time < overdue_before(now, overdue_days)
            )
        )
        or 0
    )
    return marked, open_items, overdue


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]


async def chain_state(
    session: AsyncSession, public_keys: Mapping[str, Ed25519PublicKey]
) -> ChainState:
    """The head and the last signed checkpoint, checked without walking the chain (the verify
    page does that)."""
    head = (
        await session.execute(
            select(AuditRecord.seq, AuditRecord.time).order_by(AuditRecord.seq.desc()).limit(1)
        )
    ).first()
    last = select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
    cp = (await session.execute(last)).scalars().first()
    ok = False
    if cp is not None:
        stored = await session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == cp.seq))
        key = public_keys.get(cp.key_id) or public_keys.get(ANY_KEY)
        if key is not None and stored == cp.head_hash:
            try:
                key.verify(base64.b64decode(cp.signature), checkpoint_message(cp.seq, cp.head_hash))
                ok = True
            except (InvalidSignature, ValueError):
                ok = False
    return ChainState(
        records=head[0] if head else 0,
        head_time=head[1] if head else None,
        checkpoint_seq=cp.seq if cp else None,
        checkpoint_at=cp.signed_at if cp else None,
        checkpoint_ok=ok,
    )
