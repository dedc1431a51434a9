"""The follow-up store: counts with no child in them, and each child's ledger, encrypted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow


class FollowupCount(Base):
    """How many events, and from how many distinct children, fell in one cell. No personnummer,
    no pseudonym, no per-child row: what the published tables are made from."""

    __tablename__ = "followup_counts"

    measure: Mapped[str] = mapped_column(String(40), primary_key=True)
    period: Mapped[str] = mapped_column(String(9), primary_key=True)  # 2026-03, 2026-Q1, 2025/26
    area: Mapped[str] = mapped_column(String(4), primary_key=True)  # kommunkod, all, none
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(40), primary_key=True)
    events: Mapped[int] = mapped_column(default=0)
    children: Mapped[int] = mapped_column(default=0)


class FollowupLedger(Base):
    """One child's milestones and counted cells (``tally.Ledger``), sealed under the child's own
    data key (AES-256-GCM): destroyed when the key is shredded.

    Keyed by ``token``: an HMAC of the pseudonym under the follow-up's own key, so the row can be
    found from an incoming record but never joined to the pseudonym elsewhere. Deleted at
    ``expires_at`` (a year after the child's latest activity)."""

    __tablename__ = "followup_ledgers"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
