"""The review queue: open items, overdue ones, and the gauge that counts them."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.followup.models import ReviewItem

REVIEWS_OVERDUE = Gauge(
    "samsyn_audit_reviews_overdue",
    "Review items (emergency accesses, disclosures with a review obligation) without a verdict "
    "for longer than SAMSYN_AUDIT_REVIEW_OVERDUE_DAYS",
)


def overdue_before(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)


async def count_overdue(session: AsyncSession, now: datetime, days: int) -> int:
    q = select(func.count()).where(
        ReviewItem.verdict.is_(None), ReviewItem.time < overdue_before(now, days)
    )
    return int(await session.scalar(q) or 0)


async def refresh_overdue(session: AsyncSession, now: datetime, days: int) -> None:
    REVIEWS_OVERDUE.set(await count_overdue(session, now, days))


async def items(
    session: AsyncSession, *, open_only: bool, org: str, limit: int = 200
) -> list[ReviewItem]:
    """Open items oldest first (the most overdue on top); with closed ones, newest first."""
    q = select(ReviewItem)
    if org:
        q = q.where(or_(ReviewItem.actor_org == org, ReviewItem.recipient_org == org))
    if open_only:
        q = q.where(ReviewItem.verdict.is_(None)).order_by(ReviewItem.time, ReviewItem.seq)
    else:
        q = q.order_by(ReviewItem.time.desc(), ReviewItem.seq.desc())
    return list((await session.execute(q.limit(limit))).scalars())


def verdict_reasons(target: str, verdict: str, note: str) -> list[str]:
    """The ``reasons`` of a ``review.verdict`` record: what it is about (``item:<seq>`` or
    ``sample:<id>``), the verdict and the auditor's note."""
    return [target, f"verdict:{verdict}", f"note:{note}"]
