"""Local auditor accounts of the console (the alternative to an OpenID Connect login)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow


class AuditorAccount(Base):
    """A person who may use the console; belongs to an organisation of kind ``oversight``."""

    __tablename__ = "auditors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
