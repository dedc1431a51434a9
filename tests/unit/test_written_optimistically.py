"""The read side writes a batch as if none of its rows were stored before, and writes it again,
looking first, only when that meets one stored already (``broker.infra.bulk.
written_optimistically``): the outcome is the one a look-up of every batch gave (each delivery
and each audit record once, the chain unbroken, the positions saved), and a batch with nothing
stored before makes no look-up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import broker.audit.followup.models
import broker.audit.models
import broker.ingest.models  # noqa: F401  (the imports register every table on Base.metadata)
from broker.audit.chain import GENESIS
from broker.audit.models import AuditRecord
from broker.audit.records import record
from broker.audit.sealer import Sealer
from broker.config import Settings
from broker.infra.bulk import written_optimistically
from broker.infra.db import Base, make_engine, make_sessionmaker
from broker.infra.positions import ConsumerPosition
from broker.records import AuditAction, AuditEntry
from consumers.feed.materializer import Materializer
from consumers.models import FeedItem
from tests.kit.keylog import key_ring
from tests.unit.test_materializer_batch import KEKS, delivery, summary

TP = TopicPartition("deliveries.v1", 0)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/read-side.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@contextmanager
def look_ups(engine: AsyncEngine, table: str) -> Iterator[list[str]]:
    """The statements that look up which keys ``table`` holds (``stored_keys``)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(f"SELECT {table}.") and " IN (" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", note)


async def test_a_write_that_succeeds_is_not_repeated() -> None:
    calls: list[bool] = []

    async def write(look_first: bool) -> str:
        calls.append(look_first)
        return "done"

    assert await written_optimistically(write) == "done"
    assert calls == [False]


async def test_a_write_that_meets_a_stored_key_is_repeated_looking_first() -> None:
    calls: list[bool] = []

    async def write(look_first: bool) -> str:
        calls.append(look_first)
        if not look_first:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        return "done"

    assert await written_optimistically(write) == "done"
    assert calls == [False, True]


async def test_a_second_conflict_and_other_errors_are_raised() -> None:
    calls: list[bool] = []

    async def conflicting(look_first: bool) -> None:
        calls.append(look_first)
        raise IntegrityError("INSERT", {}, Exception("NOT NULL constraint failed"))

    with pytest.raises(IntegrityError):
        await written_optimistically(conflicting)
    assert calls == [False, True]

    async def failing(look_first: bool) -> None:
        calls.append(look_first)
        raise RuntimeError("database gone")

    calls.clear()
    with pytest.raises(RuntimeError):
        await written_optimistically(failing)
    assert calls == [False]  # only a unique key met is a reason to look and write again


async def _positions(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = (await session.execute(select(ConsumerPosition))).scalars()
        return {f"{p.group_id}/{p.topic}/{p.partition}": p.next_offset for p in rows}


async def test_materializer_batches(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    materializer = Materializer(Settings(), sessions, key_ring(sessions, KEKS))
    first, second, third = delivery("eh-a", None), delivery("soc-a", None), delivery("vc", None)

    with look_ups(engine, "feed_items") as seen:
        await materializer.store_batch([(first, 0), (summary(first), 0)], {TP: 2})
    assert materializer._stored == 1
    assert seen == []  # nothing stored before: no look-up

    with look_ups(engine, "feed_items") as seen:
        await materializer.store_batch([(second, 0), (first, 0), (third, 0)], {TP: 5})
    assert materializer._stored == 2  # the repeat is left out, the others stored
    assert len(seen) == 1  # the second write looked first
    async with sessions() as session:
        feed = list((await session.execute(select(FeedItem).order_by(FeedItem.seq))).scalars())
    assert [i.item_id for i in feed] == [d.delivery_id for d in (first, second, third)]
    assert list((await _positions(sessions)).values()) == [5]


def _entry(n: int) -> AuditEntry:
    return record(
        record_id=f"r-{n}",
        action=AuditAction.FEED_READ,
        outcome="ok",
        actor_org="eh-a",
        subject_pseudonym="k1:p",
    )


async def test_sealer_batches(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    sealer = Sealer(Settings(), sessions, Ed25519PrivateKey.generate(), "k1")

    with look_ups(engine, "audit_records") as seen:
        await sealer.store_batch([_entry(1), _entry(2)], {TP: 2}, due=False)
    assert seen == []

    with look_ups(engine, "audit_records") as seen:
        await sealer.store_batch([_entry(3), _entry(2), _entry(4), _entry(3)], {TP: 6}, due=True)
    assert len(seen) == 1
    async with sessions() as session:
        rows = list(
            (await session.execute(select(AuditRecord).order_by(AuditRecord.seq))).scalars()
        )
    assert [(r.seq, r.record_id) for r in rows] == [(1, "r-1"), (2, "r-2"), (3, "r-3"), (4, "r-4")]
    assert [r.prev_hash for r in rows] == [GENESIS, *(r.hash for r in rows[:-1])]
    assert list((await _positions(sessions)).values()) == [6]
