"""Keep the follow-up tables (models.py) in step with the chain, in the sealing transaction.

``project`` takes records just sealed (with their ``seq``); ``catch_up`` feeds it the records
sealed before the tables existed, or while an older sealer ran, from ``projected_seq`` on.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.followup.models import (
    AuditDaily,
    DailyChild,
    DailyReader,
    FollowupState,
    ReviewItem,
    ReviewSample,
)
from broker.audit.followup.vocabulary import (
    DECISION,
    EMERGENCY,
    READS,
    REVIEW_OBLIGATION,
    SAMPLE,
    VERDICT,
    VERDICTS,
    tagged,
)
from broker.audit.models import AuditRecord
from broker.audit.service import as_dict
from broker.infra.db import dialect_insert

LOCAL = ZoneInfo("Europe/Stockholm")
CATCH_UP_BATCH = 5000
DAILY_KEY = ["day", "org", "side", "action", "outcome", "legal_ground", "off_hours"]
ACTOR, RECIPIENT = "actor", "recipient"


def off_hours(moment: datetime, office_hours: tuple[int, int]) -> bool:
    """Outside ``[start, end)`` o'clock on a weekday, Swedish local time."""
    local = moment.astimezone(LOCAL)
    return local.weekday() >= 5 or not office_hours[0] <= local.hour < office_hours[1]


def needs_review(rec: dict[str, Any]) -> bool:
    if rec["action"] == EMERGENCY:
        return bool(rec["outcome"] == "ok")
    return rec["outcome"] in ("allow", "ok") and REVIEW_OBLIGATION in (rec.get("reasons") or [])


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def project(
    session: AsyncSession, records: list[dict[str, Any]], office_hours: tuple[int, int]
) -> None:
    """Count, queue and close what ``records`` (sealed, in seq order) say."""
    if not records:
        return
    daily: Counter[tuple[date, str, str, str, str, str, bool]] = Counter()
    children: set[tuple[date, str, str]] = set()
    items: list[dict[str, Any]] = []
    # The records of a router batch share one time: its UTC day worked out once.
    days: dict[datetime, date] = {}
    for rec in records:
        moment = _moment(rec["time"])
        day = days.get(moment)
        if day is None:
            day = days[moment] = moment.astimezone(UTC).date()
        action, outcome, actor = rec["action"], rec["outcome"], rec.get("actor_org")
        decision = action == DECISION
        read = not decision and action in READS
        ground = (rec.get("legal_ground") or "") if decision else ""
        late = read and off_hours(moment, office_hours)
        daily[(day, actor or "", ACTOR, action, outcome, ground, late)] += 1
        if decision and (recipient := rec.get("recipient_org")):
            daily[(day, recipient, RECIPIENT, action, outcome, ground, False)] += 1
        if read and actor and rec.get("subject_pseudonym"):
            children.add((day, actor, rec["subject_pseudonym"]))
        if needs_review(rec):
            items.append(_item(rec, moment))
        elif action in (SAMPLE, VERDICT):
            # A verdict may name an item of this very batch: queue those first.
            await _queue(session, items)
            items = []
            await (_sample if action == SAMPLE else _verdict)(session, rec, moment)
    await _queue(session, items)
    await _count(session, daily)
    await _count_children(session, children)
    await _advance(session, int(records[-1]["seq"]))


async def _queue(session: AsyncSession, items: list[dict[str, Any]]) -> None:
    if items:
        await session.execute(dialect_insert(session, ReviewItem).on_conflict_do_nothing(), items)


def _item(rec: dict[str, Any], moment: datetime) -> dict[str, Any]:
    return {
        "seq": rec["seq"],
        "time": moment,
        "action": rec["action"],
        "actor_org": rec.get("actor_org"),
        "recipient_org": rec.get("recipient_org"),
        "subject_pseudonym": rec.get("subject_pseudonym"),
        "event_id": rec.get("event_id"),
        "legal_ground": rec.get("legal_ground"),
    }


async def _sample(session: AsyncSession, rec: dict[str, Any], moment: datetime) -> None:
    reasons = rec.get("reasons") or []
    reads = tagged(reasons, "reads") or ""
    row = {
        "id": rec["record_id"],
        "seq": rec["seq"],
        "org": tagged(reasons, "org") or "",
        "month": tagged(reasons, "month") or "",
        "seed": tagged(reasons, "seed") or "",
        "population": int(tagged(reasons, "population") or 0),
        "read_seqs": [s for s in reads.split(",") if s],
        "drawn_by": rec.get("actor_client"),
        "drawn_at": moment,
    }
    await session.execute(
        dialect_insert(session, ReviewSample).values(row).on_conflict_do_nothing()
    )


async def _verdict(session: AsyncSession, rec: dict[str, Any], moment: datetime) -> None:
    reasons = rec.get("reasons") or []
    verdict = tagged(reasons, "verdict")
    if verdict not in VERDICTS:
        return
    values = {
        "verdict": verdict,
        "note": tagged(reasons, "note"),
        "reviewed_by": rec.get("actor_client"),
        "reviewed_at": moment,
        "verdict_seq": rec["seq"],
    }
    item, sample = tagged(reasons, "item"), tagged(reasons, "sample")
    if item and item.isdigit():
        await session.execute(
            update(ReviewItem).where(ReviewItem.seq == int(item)).values(**values)
        )
    elif sample:
        await session.execute(
            update(ReviewSample).where(ReviewSample.id == sample).values(**values)
        )


async def _count(
    session: AsyncSession, daily: Counter[tuple[date, str, str, str, str, str, bool]]
) -> None:
    rows = [
        {
            "day": k[0],
            "org": k[1],
            "side": k[2],
            "action": k[3],
            "outcome": k[4],
            "legal_ground": k[5],
            "off_hours": k[6],
            "count": n,
        }
        for k, n in daily.items()
    ]
    stmt = dialect_insert(session, AuditDaily)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=DAILY_KEY,
            set_={"count": AuditDaily.count + stmt.excluded.count},
        ),
        rows,
    )


async def _count_children(session: AsyncSession, seen: set[tuple[date, str, str]]) -> None:
    """Add the (day, org, child) triples not seen before, and count them per (day, org)."""
    if not seen:
        return
    rows = [{"day": d, "org": o, "subject_pseudonym": s} for d, o, s in seen]
    stmt = dialect_insert(session, DailyChild).on_conflict_do_nothing()
    new = Counter(
        (d, o)
        for d, o in await session.execute(stmt.returning(DailyChild.day, DailyChild.org), rows)
    )
    if not new:
        return
    counts = [{"day": d, "org": o, "children": n} for (d, o), n in new.items()]
    up = dialect_insert(session, DailyReader)
    await session.execute(
        up.on_conflict_do_update(
            index_elements=["day", "org"],
            set_={"children": DailyReader.children + up.excluded.children},
        ),
        counts,
    )


async def _advance(session: AsyncSession, seq: int) -> None:
    up = dialect_insert(session, FollowupState).values(id=1, projected_seq=seq)
    await session.execute(
        up.on_conflict_do_update(index_elements=["id"], set_={"projected_seq": seq})
    )


async def projected_seq(session: AsyncSession) -> int:
    value = await session.scalar(select(func.max(FollowupState.projected_seq)))
    return int(value or 0)


async def catch_up(session: AsyncSession, office_hours: tuple[int, int]) -> int:
    """Project one batch of sealed records the tables have not taken in; how many."""
    after = await projected_seq(session)
    rows = (
        await session.execute(
            select(AuditRecord)
            .where(AuditRecord.seq > after)
            .order_by(AuditRecord.seq)
            .limit(CATCH_UP_BATCH)
        )
    ).scalars()
    records = [as_dict(r) for r in rows]
    await project(session, records, office_hours)
    return len(records)
