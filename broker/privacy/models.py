"""The wrapped data key of each child (pseudonym). The key itself is never stored in clear."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, LargeBinary, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from broker.infra.db import Base, utcnow
from broker.subjects.pseudonym import MAX_LENGTH


class SubjectKey(Base):
    """A child's data key, wrapped by the KEK ``kek_id``.

    Shredding empties ``wrapped_key`` and sets ``shredded_at``: every ciphertext under the key is
    unreadable from then on, wherever a copy lies (Kafka segments, replicas, backups taken after
    the shred). A later event about the same child gets a new key in the same row.

    ``log_offset`` is the offset in ``keys.v1`` of the record that last changed the row (a key
    or a tombstone, ``broker/privacy/keylog.py``); none for a row older than the key log.
    """

    __tablename__ = "subject_keys"

    pseudonym: Mapped[str] = mapped_column(String(MAX_LENGTH), primary_key=True)
    kek_id: Mapped[str | None] = mapped_column(String(64), index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    shredded_at: Mapped[datetime | None]
    log_offset: Mapped[int | None] = mapped_column(BigInteger)


# The table itself, for statements run with many parameter sets at once (executemany).
SUBJECT_KEYS = cast(Table, SubjectKey.__table__)
