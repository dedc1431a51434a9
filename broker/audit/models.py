"""Sealed audit records and signed checkpoints."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base


class AuditRecord(Base):
    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_subject_seq", "subject_pseudonym", "seq"),
        Index("ix_audit_actor_seq", "actor_org", "seq"),
        Index("ix_audit_recipient_seq", "recipient_org", "seq"),
        # One organisation's reads in a month: a sample's population.
        Index("ix_audit_actor_action_time", "actor_org", "action", "time"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record_id: Mapped[str] = mapped_column(String(36), unique=True)
    time: Mapped[datetime]
    actor_org: Mapped[str | None] = mapped_column(String(63))
    actor_client: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40), index=True)
    subject_pseudonym: Mapped[str | None] = mapped_column(String(100))
    event_id: Mapped[str | None] = mapped_column(String(128))
    recipient_org: Mapped[str | None] = mapped_column(String(63))
    outcome: Mapped[str] = mapped_column(String(10))
    legal_ground: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str | None] = mapped_column(String(40))
    categories_shared: Mapped[list[str]]
    categories_withheld: Mapped[list[str]]
    reasons: Mapped[list[str]]
    policy_revision: Mapped[str | None] = mapped_column(String(100))
    decision_id: Mapped[str | None] = mapped_column(String(64))
    # The statute (lagrum) a disclosure rests on, and whether it is an open review item (a
    # nödöppning, a ground without an explicit provision); null on records of other kinds.
    statute: Mapped[str | None] = mapped_column(String(300))
    review: Mapped[bool | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# The table itself, for the sealer's many rows at once: an INSERT of the mapped class goes
# through the ORM's bulk path, which cost a quarter of the read side's CPU.
AUDIT_RECORDS = cast(Table, AuditRecord.__table__)


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
