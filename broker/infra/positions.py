"""Where each read-side consumer stands, kept in the database beside what it wrote.

The materializer and the sealer write their rows and their next offsets in one SQL transaction,
and start from these offsets when partitions are assigned to them. Kafka's committed offsets are
still committed (consumer lag is measured from them: :class:`LagMarks`), but the database is the
truth: a database restored from a backup starts each consumer where that backup's rows end, so
the read model and the audit chain catch up from Kafka by themselves (their inserts are
idempotent, so what was already there is not written twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition
from sqlalchemy import BigInteger, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from broker.config import Settings
from broker.infra.db import Base, dialect_insert
from broker.runtime.supervise import within

# How stale Kafka's copy of a read-side consumer's positions may be while it is busy.
LAG_MARK_EVERY_S = 1.0


class ConsumerPosition(Base):
    __tablename__ = "consumer_positions"

    group_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    topic: Mapped[str] = mapped_column(String(255), primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)


def next_offsets(records: Iterable[Any]) -> dict[TopicPartition, int]:
    """The offset after the last of ``records`` (Kafka ConsumerRecords) per partition."""
    # Keyed by plain tuples, one TopicPartition per partition at the end: a TopicPartition per
    # record was three quarters of the cost (0.9 -> 0.2 µs per record; the read side's workers
    # see about nine records per event).
    last: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        if r.offset >= last.get(key, -1):
            last[key] = r.offset
    return {TopicPartition(topic, partition): o + 1 for (topic, partition), o in last.items()}


async def save(session: AsyncSession, group_id: str, offsets: dict[TopicPartition, int]) -> None:
    """Record the positions inside the caller's transaction (one upsert)."""
    if not offsets:
        return
    rows = [
        {"group_id": group_id, "topic": tp.topic, "partition": tp.partition, "next_offset": o}
        for tp, o in offsets.items()
    ]
    stmt = dialect_insert(session, ConsumerPosition)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["group_id", "topic", "partition"],
            set_={"next_offset": stmt.excluded.next_offset},
        ),
        rows,
    )


class LagMarks:
    """Kafka's committed offsets of a consumer whose positions the database holds (:func:`save`).

    Only consumer lag (the metric, the stall watchdog's question) is read from them, so they are
    committed at most every ``LAG_MARK_EVERY_S`` while batches keep coming, and at once when a
    fetch brings nothing (caught up, the lag reads 0 again), rather than after every batch: an
    offset commit is a round trip and a write to ``__consumer_offsets``, and the read side made
    two per routed batch. Call :meth:`stored` right after a batch's transaction has committed
    and :meth:`idle` after an empty fetch: the consumer's position is then what is stored, which
    is what ``commit()`` sends.

    A new session counts as behind: Kafka's offsets may lag the database's after a stop (or a
    crash between the SQL commit and Kafka's), and with nothing new to fetch they would never be
    committed again, so the lag would not read 0 and the watchdog would take the idle consumer
    for a stalled one."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        deadline_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.deadline_s = deadline_s
        self.clock = clock
        self._next = 0.0  # monotonic time of the next commit while busy
        self._behind = True  # Kafka may not have been told of everything stored

    async def stored(self) -> None:
        self._behind = True
        if self.clock() >= self._next:
            await self._commit()

    async def idle(self) -> None:
        if self._behind and self.consumer.assignment():
            await self._commit()

    async def _commit(self) -> None:
        await within(self.consumer.commit(), self.deadline_s, "the offset commit")
        self._behind = False
        self._next = self.clock() + LAG_MARK_EVERY_S


def subscribe(
    consumer: AIOKafkaConsumer,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    group: str,
    *topics: str,
) -> None:
    """Subscribe ``consumer`` (made without topics) so that it starts where the database says."""
    consumer.subscribe(
        [settings.topic(t) for t in topics],
        listener=SeekToStored(consumer, sessions, settings.topic(group)),
    )


class SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    """On every assignment, move the consumer to the positions the database holds; partitions
    the database knows nothing of start from Kafka's committed offset as usual."""

    def __init__(
        self, consumer: AIOKafkaConsumer, sessions: async_sessionmaker[AsyncSession], group: str
    ) -> None:
        self.consumer = consumer
        self.sessions = sessions
        self.group = group

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if not assigned:
            return
        async with self.sessions() as session:
            rows = await session.execute(
                select(ConsumerPosition).where(
                    ConsumerPosition.group_id == self.group,
                    ConsumerPosition.topic.in_({tp.topic for tp in assigned}),
                )
            )
            stored = {TopicPartition(p.topic, p.partition): p.next_offset for p in rows.scalars()}
        for tp in assigned:
            if tp in stored:
                self.consumer.seek(tp, stored[tp])
