"""Tables derived from the sealed chain, written by the sealer in the transaction that seals.

They hold nothing the chain does not: each can be rebuilt from ``audit_records`` (the sealer
catches up from ``followup_state.projected_seq`` at start). They exist so that the console's
follow-up pages read a few thousand summary rows instead of millions of records.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base


class AuditDaily(Base):
    """Records per UTC day, organisation and kind; empty strings stand for "none" (key columns).

    Every record counts once on its actor's side (``org`` = ``actor_org``, or "" for none); a
    decision counts once more on its recipient's side. The pairs of organisations are left out
    on purpose: they would make the table nearly as long as the trail.
    """

    __tablename__ = "audit_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    org: Mapped[str] = mapped_column(String(63), primary_key=True)
    side: Mapped[str] = mapped_column(String(10), primary_key=True)  # actor | recipient
    action: Mapped[str] = mapped_column(String(40), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(10), primary_key=True)
    legal_ground: Mapped[str] = mapped_column(String(40), primary_key=True)  # decisions only
    # A read outside office hours (Europe/Stockholm, weekdays; settings.audit_office_hours).
    off_hours: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class DailyChild(Base):
    """That an organisation read a child on a day (deduplicates the distinct count below)."""

    __tablename__ = "audit_daily_children"

    # In this order: the flag "read after the relationship ended" looks up (org, child).
    org: Mapped[str] = mapped_column(String(63), primary_key=True)
    subject_pseudonym: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class DailyReader(Base):
    """How many distinct children an organisation read on a day."""

    __tablename__ = "audit_daily_readers"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    org: Mapped[str] = mapped_column(String(63), primary_key=True)
    children: Mapped[int] = mapped_column(Integer)


class ReviewItem(Base):
    """A record that needs a human's verdict: an emergency access, or a disclosure whose
    obligations include ``review``. Open while ``verdict`` is null; the latest sealed
    ``review.verdict`` about it is what it shows."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_open", "verdict", "time"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(40))
    actor_org: Mapped[str | None] = mapped_column(String(63), index=True)
    recipient_org: Mapped[str | None] = mapped_column(String(63))
    subject_pseudonym: Mapped[str | None] = mapped_column(String(100))
    event_id: Mapped[str | None] = mapped_column(String(128))
    legal_ground: Mapped[str | None] = mapped_column(String(40))
    verdict: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(2000))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None]
    verdict_seq: Mapped[int | None] = mapped_column(Integer)


class ReviewSample(Base):
    """A drawn sample of one organisation's reads in one month (``review.sample``), and its
    result (``review.verdict`` naming the sample)."""

    __tablename__ = "review_samples"
    __table_args__ = (Index("ix_review_samples_org_month", "org", "month"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    org: Mapped[str] = mapped_column(String(63))
    month: Mapped[str] = mapped_column(String(7))
    seed: Mapped[str] = mapped_column(String(64))
    population: Mapped[int] = mapped_column(Integer)
    read_seqs: Mapped[list[str]]
    drawn_by: Mapped[str | None] = mapped_column(String(64))
    drawn_at: Mapped[datetime]
    verdict: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(2000))
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None]
    verdict_seq: Mapped[int | None] = mapped_column(Integer)


class FollowupState(Base):
    """How far the tables above have taken in the chain (one row)."""

    __tablename__ = "followup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    projected_seq: Mapped[int] = mapped_column(Integer)
