"""The period's follow-up for the oversight body's minutes: what was checked, by whom, with
which verdicts, and what is still open."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.followup.models import ReviewItem, ReviewSample


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
