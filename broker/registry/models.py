"""SQL tables of the registry. Children appear only as keyed pseudonyms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    municipality: Mapped[str | None] = mapped_column(String(4), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiClient(Base):
    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_pseudonym: Mapped[str] = mapped_column(String(100), index=True)
    recorded_by_org: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    given_by: Mapped[list[str]]
    scope: Mapped[dict[str, Any]]
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]
    # Who withdrew it (guardian, second_guardian, child); null when the withdrawal named no one.
    withdrawn_by: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Relationship(Base):
    __tablename__ = "relationships"
    __table_args__ = (Index("ix_relationships_subject_org", "subject_pseudonym", "org_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_pseudonym: Mapped[str] = mapped_column(String(100))
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    role: Mapped[str] = mapped_column(String(32))
    declared_by_org: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KeyMaterial(Base):
    """Keys generated at first start when settings provide none (development and test only)."""

    __tablename__ = "key_material"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), index=True)
    material: Mapped[str] = mapped_column(String(4000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
