"""Unusual access, flagged for a human. A flag says what was seen and against what measure; it
decides nothing and changes nothing — an auditor looks at the records it points to.

The measures are deliberately simple, so that a flag can be explained in one sentence:

- many children: on a day of the period an organisation read at least ``CHILDREN_FACTOR`` times
  as many distinct children as on an average reading day of the ``BASELINE_DAYS`` before the
  period (and at least ``CHILDREN_MIN``); an organisation with fewer than
  ``BASELINE_MIN_DAYS`` reading days before has no baseline yet and is not flagged;
- outside office hours: at least ``OFF_HOURS_MIN`` reads by people (feed and child view, not
  webhook pushes) on weekday evenings, nights or weekends, Swedish time;
- after the relationship ended: days on which an organisation read a child after the day its
  relationship with the child ended (or expired), with no other relationship valid that day;
- repeated refusals: at least ``REFUSED_MIN`` refused attempts by an organisation on one day.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.followup.models import AuditDaily, DailyChild, DailyReader
from broker.audit.followup.projection import ACTOR
from broker.records import AuditAction
from broker.registry.models import Relationship

BASELINE_DAYS = 60
BASELINE_MIN_DAYS = 5
CHILDREN_FACTOR = 3.0
CHILDREN_MIN = 10
OFF_HOURS_MIN = 3
REFUSED_MIN = 3
PERSON_READS = (AuditAction.FEED_READ, AuditAction.CHILD_READ)
AFTER_END_LIMIT = 10_000


@dataclass(frozen=True)
class Flag:
    kind: str
    org: str
    title: str
    explanation: str
    # The search (query parameters of /audit/search) that shows the records behind the flag.
    search: dict[str, str] = field(default_factory=dict)


def _span(first: date, last: date) -> tuple[datetime, datetime]:
    return (
        datetime.combine(first, time(), UTC),
        datetime.combine(last + timedelta(days=1), time(), UTC),
    )


def _search(org: str, first: date, last: date, **extra: str) -> dict[str, str]:
    return {"run": "1", "org": org, "from": first.isoformat(), "to": last.isoformat(), **extra}


async def flags(session: AsyncSession, first: date, last: date, org: str = "") -> list[Flag]:
    found = [
        *await many_children(session, first, last, org),
        *await off_hours(session, first, last, org),
        *await after_relationship(session, first, last, org),
        *await refused(session, first, last, org),
    ]
    return sorted(found, key=lambda f: (f.kind, f.org))


async def many_children(session: AsyncSession, first: date, last: date, org: str) -> list[Flag]:
    since = first - timedelta(days=BASELINE_DAYS)
    q = select(DailyReader.org, DailyReader.day, DailyReader.children).where(
        DailyReader.day >= since, DailyReader.day <= last
    )
    if org:
        q = q.where(DailyReader.org == org)
    before: dict[str, list[int]] = defaultdict(list)
    peak: dict[str, tuple[int, date]] = {}
    for who, day, children in await session.execute(q):
        if day < first:
            before[who].append(children)
        elif children > peak.get(who, (0, day))[0]:
            peak[who] = (children, day)
    out: list[Flag] = []
    for who, (children, day) in sorted(peak.items()):
        history = before.get(who, [])
        if len(history) < BASELINE_MIN_DAYS:
            continue
        baseline = sum(history) / len(history)
        if children >= CHILDREN_MIN and children >= CHILDREN_FACTOR * baseline:
            out.append(
                Flag(
                    "many_children",
                    who,
                    "Många olika barn / Many distinct children",
                    f"{day}: {who} läste {children} olika barn; en vanlig dag de "
                    f"{BASELINE_DAYS} dagarna innan {baseline:.1f}. / "
                    f"On {day} {who} read {children} distinct children; on an ordinary day "
                    f"of the {BASELINE_DAYS} days before, {baseline:.1f}.",
                    _search(who, day, day),
                )
            )
    return out


async def off_hours(session: AsyncSession, first: date, last: date, org: str) -> list[Flag]:
    n = func.sum(AuditDaily.count)
    q = (
        select(AuditDaily.org, AuditDaily.off_hours, n)
        .where(
            AuditDaily.day >= first,
            AuditDaily.day <= last,
            AuditDaily.action.in_(PERSON_READS),
            AuditDaily.side == ACTOR,
            AuditDaily.org != "",
        )
        .group_by(AuditDaily.org, AuditDaily.off_hours)
    )
    if org:
        q = q.where(AuditDaily.org == org)
    counts: dict[str, dict[bool, int]] = defaultdict(lambda: {True: 0, False: 0})
    for who, outside, total in await session.execute(q):
        counts[who][bool(outside)] += int(total)
    return [
        Flag(
            "off_hours",
            who,
            "Läsningar utanför kontorstid / Reads outside office hours",
            f"{who}: {c[True]} av {c[True] + c[False]} läsningar på kvällar, nätter eller helger. "
            f"/ {c[True]} of {c[True] + c[False]} reads on evenings, nights or weekends.",
            _search(who, first, last),
        )
        for who, c in sorted(counts.items())
        if c[True] >= OFF_HOURS_MIN
    ]


async def after_relationship(
    session: AsyncSession, first: date, last: date, org: str
) -> list[Flag]:
    """Days on which an organisation read a child after the day its relationship with the
    child ended, with no other relationship of it to the child valid that day.

    Driven from the ended relationships (few) to the days their organisation read their child
    (``audit_daily_children``, keyed by organisation and child): whole days, so a read on the
    day of the end itself is not flagged (it may have come before the end)."""
    ended = func.coalesce(Relationship.ended_at, Relationship.valid_until)
    # Each column on its own, not the coalesce: PostgreSQL then estimates the few ended
    # relationships from the columns' statistics and probes the children's key per each (a
    # guess of "most" made it scan every organisation's children of the period instead).
    has_ended = or_(Relationship.ended_at.is_not(None), Relationship.valid_until.is_not(None))
    q = (
        select(DailyChild.org, DailyChild.subject_pseudonym, DailyChild.day, ended)
        .join(
            Relationship,
            and_(
                Relationship.org_id == DailyChild.org,
                Relationship.subject_pseudonym == DailyChild.subject_pseudonym,
            ),
        )
        .where(has_ended, DailyChild.day >= first, DailyChild.day <= last)
        .limit(AFTER_END_LIMIT)
    )
    if org:
        q = q.where(DailyChild.org == org)
    days = {
        (who, child, day)
        for who, child, day, end in await session.execute(q)
        if day > end.astimezone(UTC).date()
    }
    if not days:
        return []
    spans = select(
        Relationship.org_id,
        Relationship.subject_pseudonym,
        Relationship.valid_from,
        Relationship.valid_until,
        Relationship.ended_at,
    ).where(
        Relationship.subject_pseudonym.in_({child for _, child, _ in days}),
        Relationship.org_id.in_({who for who, _, _ in days}),
    )
    related: dict[tuple[str, str], list[tuple[datetime, datetime | None, datetime | None]]]
    related = defaultdict(list)
    for who, child, valid_from, valid_until, ended_at in await session.execute(spans):
        related[(who, child)].append((valid_from, valid_until, ended_at))
    after: dict[str, set[tuple[str, date]]] = defaultdict(set)
    for who, child, day in days:
        if not any(_valid_on(*span, day) for span in related[(who, child)]):
            after[who].add((child, day))
    return [
        Flag(
            "after_relationship",
            who,
            "Läsning efter avslutad relation / Reads after the relationship ended",
            f"{who}: läste {len({c for c, _ in seen})} barn på {len(seen)} dagar efter att "
            f"relationen till barnet upphört. / Read {len({c for c, _ in seen})} children on "
            f"{len(seen)} days after the relationship with the child had ended.",
            _search(who, first, last),
        )
        for who, seen in sorted(after.items())
    ]


def _valid_on(
    valid_from: datetime, valid_until: datetime | None, ended_at: datetime | None, day: date
) -> bool:
    """Whether a relationship was valid at some time of the UTC day."""
    start, end = _span(day, day)
    stops = [t for t in (ended_at, valid_until) if t is not None]
    return valid_from < end and all(t > start for t in stops)


async def refused(session: AsyncSession, first: date, last: date, org: str) -> list[Flag]:
    n = func.sum(AuditDaily.count)
    q = (
        select(AuditDaily.org, AuditDaily.day, n)
        .where(
            AuditDaily.day >= first,
            AuditDaily.day <= last,
            AuditDaily.outcome == "refused",
            AuditDaily.side == ACTOR,
            AuditDaily.org != "",
        )
        .group_by(AuditDaily.org, AuditDaily.day)
        .having(n >= REFUSED_MIN)
    )
    if org:
        q = q.where(AuditDaily.org == org)
    days: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for who, day, total in await session.execute(q):
        days[who].append((day, int(total)))
    out: list[Flag] = []
    for who, seen in sorted(days.items()):
        worst_day, worst = max(seen, key=lambda d: d[1])
        out.append(
            Flag(
                "refused",
                who,
                "Upprepade avvisade försök / Repeated refused attempts",
                f"{who}: {worst} avvisade försök {worst_day} ({len(seen)} dagar med minst "
                f"{REFUSED_MIN}). / {worst} refused attempts on {worst_day} ({len(seen)} days "
                f"with at least {REFUSED_MIN}).",
                _search(who, first, last, outcome="refused"),
            )
        )
    return out
