"""Each child's wrapped data key, also outside the database: a compacted Kafka topic, ``keys.v1``.

Why: a key lives only in ``subject_keys``, so a database restored from a backup would lack every
key made after the backup, and what Kafka still holds about those children would never open
again. So each new (or re-wrapped) key is written to ``keys.v1`` (key: the pseudonym; value: the
KEK-wrapped bytes and the KEK's id, never the key in clear) with acks=all inside the transaction
that stores it, before anything sealed under it can reach Kafka; each destroyed key is a
tombstone written inside the transaction that destroys it. Both hold the key's row (locked)
while they write, so the topic's order per child is the database's order.

Each row remembers the offset of the record that last changed it (``log_offset``). At start,
before anything is opened or sealed, a process reads the topic once to its end offsets and
applies the latest record of every child whose row is older than it (or missing): a key made
after the backup comes back; a key destroyed after it is destroyed again (its tombstone); a row
changed after the read began (another process running meanwhile) is newer and left alone. So the
import is idempotent, and nothing needs following after it: while running, every process shares
the database, and the topic matters again only at the next restore.

Compaction (``broker/infra/topics.py``) removes a destroyed key's wrapped copy within a bound
(docs/operations.md); its tombstone (a pseudonym, no key) stays ``delete.retention.ms``, which
must outlast the oldest backup that may be restored: an older backup brings back keys destroyed
since, as it always did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.infra import kafka
from broker.infra.db import utcnow
from broker.infra.kafka_writer import KafkaWriter
from broker.privacy.models import SUBJECT_KEYS
from broker.records import WrappedSubjectKey, decode_wrapped_key

log = structlog.get_logger("samsyn.keylog")
# Not a pseudonym (those are "kid:hex"): the record that makes the topic roll its segment.
TICK = "compaction-tick"
BATCH = 1000


class KeyLog(Protocol):
    async def put(self, key: WrappedSubjectKey) -> int:
        """Write ``key`` (acks=all); its offset."""
        ...

    async def tombstone(self, pseudonyms: Sequence[str]) -> list[int]:
        """Write a tombstone for each pseudonym (acks=all); their offsets, in order."""
        ...


class KafkaKeyLog:
    def __init__(self, writer: KafkaWriter) -> None:
        self.writer = writer

    async def put(self, key: WrappedSubjectKey) -> int:
        [offset] = await self.writer.send_keyed(kafka.KEYS, [(key.pseudonym, key)])
        return offset

    async def tombstone(self, pseudonyms: Sequence[str]) -> list[int]:
        return await self.writer.send_keyed(kafka.KEYS, [(p, None) for p in pseudonyms])

    async def tick(self) -> None:
        """Append a record that holds nothing: Kafka rolls a segment only when something is
        appended, and only a rolled segment is compacted. Written every gallring run, it bounds
        how long a destroyed key's wrapped copy can wait in the active segment."""
        await self.writer.send_keyed(kafka.KEYS, [(TICK, None)])


@dataclass(frozen=True)
class Latest:
    """The last record of one child in ``keys.v1``: its key, or ``None`` for a tombstone."""

    offset: int
    key: WrappedSubjectKey | None


async def read_key_log(settings: Settings, timeout_s: float = 60.0) -> dict[str, Latest]:
    """Every child's last record in ``keys.v1``, read once up to the end offsets at the start."""
    topic = settings.topic(kafka.KEYS)
    consumer = AIOKafkaConsumer(
        **kafka.connection(settings),
        group_id=None,  # no group: every partition, nothing committed
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        # Checked first: subscribing to a missing topic could have the broker create it,
        # without the compaction configs.
        if topic not in await consumer.topics():
            raise RuntimeError(f"topic {topic} does not exist: run `samsyn topics`")
        consumer.subscribe([topic])
        latest: dict[str, Latest] = {}

        def keep(record: ConsumerRecord[bytes, bytes]) -> None:
            pseudonym = None if record.key is None else record.key.decode()
            if pseudonym is not None and pseudonym != TICK:
                value = None if record.value is None else decode_wrapped_key(record.value)
                latest[pseudonym] = Latest(record.offset, value)

        await kafka.read_to_end(consumer, keep, timeout_s)
        return latest
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Imported:
    keys: int
    tombstones: int


def _insert(conn: AsyncConnection) -> Any:
    """INSERT … ON CONFLICT of the connection's dialect (both spell it the same way)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(SUBJECT_KEYS)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), BATCH):
        yield items[i : i + BATCH]


async def apply_key_log(
    sessions: async_sessionmaker[AsyncSession], latest: dict[str, Latest]
) -> Imported:
    """Make ``subject_keys`` hold each child's latest record where its row is older (a lower
    ``log_offset``, none, or no row at all); the records applied."""
    now = utcnow()
    table = SUBJECT_KEYS
    async with sessions() as session:
        rows = await session.execute(select(table.c.pseudonym, table.c.log_offset))
        known: dict[str, int | None] = {row.pseudonym: row.log_offset for row in rows}

    def older(pseudonym: str, entry: Latest) -> bool:
        if pseudonym not in known:
            return entry.key is not None  # a tombstone for no row: nothing to destroy
        offset = known[pseudonym]
        return offset is None or offset < entry.offset

    # Usually (no restore) nothing: a start then costs one read of the topic and of the table.
    latest = {p: e for p, e in latest.items() if older(p, e)}
    keys = [
        {
            "pseudonym": p,
            "kek_id": e.key.kek_id,
            "wrapped_key": e.key.wrapped_key,
            "log_offset": e.offset,
            "created_at": now,
        }
        for p, e in sorted(latest.items())
        if e.key is not None
    ]
    tombstones = [{"p": p, "o": e.offset} for p, e in sorted(latest.items()) if e.key is None]
    destroy = (
        update(table)
        .where(
            table.c.pseudonym == bindparam("p"),
            or_(table.c.log_offset.is_(None), table.c.log_offset < bindparam("o")),
        )
        .values(wrapped_key=None, kek_id=None, shredded_at=now, log_offset=bindparam("o"))
    )
    async with sessions() as session, session.begin():
        conn = await session.connection()
        for chunk in _chunks(keys):
            insert = _insert(conn)
            newer = insert.excluded.log_offset
            await conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.pseudonym],
                    set_={
                        "kek_id": insert.excluded.kek_id,
                        "wrapped_key": insert.excluded.wrapped_key,
                        "log_offset": newer,
                        "shredded_at": None,
                    },
                    where=or_(table.c.log_offset.is_(None), table.c.log_offset < newer),
                ),
                list(chunk),
            )
        for chunk in _chunks(tombstones):
            await conn.execute(destroy, list(chunk))
    return Imported(len(keys), len(tombstones))


# What reads the key log at start: Kafka, or the in-process test layer's in-memory log.
KeyLogReader = Callable[[Settings], Awaitable[dict[str, Latest]]]


async def import_key_log(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    stopping: asyncio.Event,
    read: KeyLogReader | None = None,
) -> Imported | None:
    """Read ``keys.v1`` (with ``read``, :func:`read_key_log` by default) and apply it, again
    and again until it works (Kafka may still be starting); ``None`` if ``stopping`` is set
    first."""
    read = read or read_key_log
    backoff = 0.5
    while not stopping.is_set():
        try:
            done = await apply_key_log(sessions, await read(settings))
        except Exception as err:
            log.warning("key log not imported yet", error=repr(err), retry_in_s=backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        log.info("key log imported", keys=done.keys, tombstones=done.tombstones)
        return done
    return None
