"""The wrapped data key of each child (pseudonym). The key itself is never stored in clear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow
from broker.subjects.pseudonym import MAX_LENGTH


class SubjectKey(Base):
    """A child's data key, wrapped by the KEK ``kek_id``.

    Shredding empties ``wrapped_key`` and sets ``shredded_at``: every ciphertext under the key is
    unreadable from then on, wherever a copy lies (Kafka segments, replicas, backups taken after
    the shred). A later event about the same child gets a new key in the same row.
    """

    __tablename__ = "subject_keys"

    pseudonym: Mapped[str] = mapped_column(String(MAX_LENGTH), primary_key=True)
    kek_id: Mapped[str | None] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    shredded_at: Mapped[datetime | None]
