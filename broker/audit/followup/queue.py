"""The review queue: open items, overdue ones, and the gauge that counts them."""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Gauge
from sqlalchemy import func, select
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
