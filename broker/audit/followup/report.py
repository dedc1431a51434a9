"""The period's follow-up for the oversight body's minutes: what was checked, by whom, with
which verdicts, and what is still open."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.followup.flags import Flag, flags
from broker.audit.followup.models import ReviewItem, ReviewSample
from broker.audit.followup.overview import ChainState, Overview, chain_state, overview

T = TypeVar("T")


@dataclass(frozen=True)
class Checked:
    reviewed: list[ReviewItem]
    samples: list[ReviewSample]
    still_open: list[ReviewItem]

    def _done(self) -> list[tuple[str | None, str | None]]:
        """(verdict, reviewer) of each reviewed item and each sample given its result."""
        return [(x.verdict, x.reviewed_by) for x in self.reviewed] + [
            (s.verdict, s.reviewed_by) for s in self.samples if s.verdict
        ]

    def verdicts(self) -> Counter[str]:
        return Counter(str(verdict) for verdict, _ in self._done())

    def reviewers(self) -> Counter[str]:
        return Counter(str(who) for _, who in self._done())


async def checked(
    session: AsyncSession, start: datetime, end: datetime, org: str, limit: int = 1000
) -> Checked:
    """Items given their (latest) verdict in [start, end), samples drawn then, and every item
    still open now (oldest first)."""
    items_of = or_(ReviewItem.actor_org == org, ReviewItem.recipient_org == org) if org else true()
    reviewed = select(ReviewItem).where(
        items_of, ReviewItem.reviewed_at >= start, ReviewItem.reviewed_at < end
    )
    drawn = select(ReviewSample).where(ReviewSample.drawn_at >= start, ReviewSample.drawn_at < end)
    if org:
        drawn = drawn.where(ReviewSample.org == org)
    still_open = select(ReviewItem).where(items_of, ReviewItem.verdict.is_(None))
    return Checked(
        reviewed=list(
            (
                await session.execute(reviewed.order_by(ReviewItem.reviewed_at).limit(limit))
            ).scalars()
        ),
        samples=list(
            (await session.execute(drawn.order_by(ReviewSample.drawn_at).limit(limit))).scalars()
        ),
        still_open=list(
            (await session.execute(still_open.order_by(ReviewItem.time).limit(limit))).scalars()
        ),
    )


@dataclass(frozen=True)
class Report:
    seen: Overview
    done: Checked
    flags: list[Flag]
    chain: ChainState


async def gather(
    sessions: async_sessionmaker[AsyncSession],
    first: date,
    last: date,
    org: str,
    *,
    now: datetime,
    overdue_days: int,
    public_keys: Mapping[str, Ed25519PublicKey],
) -> Report:
    """The report's parts at once, each read on a session of its own (they are independent)."""

    async def on_own(read: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with sessions() as session:
            return await read(session)

    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    seen, done, found, chain = await asyncio.gather(
        on_own(
            lambda db: overview(
                db, first, last, org, now=now, overdue_days=overdue_days, per_org=False
            )
        ),
        on_own(lambda db: checked(db, start, end, org)),
        on_own(lambda db: flags(db, first, last, org)),
        on_own(lambda db: chain_state(db, public_keys)),
    )
    return Report(seen, done, found, chain)
