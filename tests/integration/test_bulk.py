"""``insert_rows`` stores what an ``INSERT`` of the same rows stores, on the leg's database
(PostgreSQL's one-statement path in the PostgreSQL leg): the same values through the same column
types, the Python-side defaults of the columns left out, a value too long for its column refused
(never cut to fit), a repeated unique key an ``IntegrityError`` (or, when asked, the first row
kept), and nothing of a failed batch left behind. ``stored_keys`` finds exactly the keys a table
holds, whatever the length of the list."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.models import AUDIT_RECORDS
from broker.infra.bulk import insert_rows, stored_keys
from broker.infra.db import Base, make_engine, make_sessionmaker
from broker.ingest.models import EVENT_ROUTES
from consumers.models import FEED_ITEMS
from tests.kit import new_postgres_database

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def database_url(stack: dict[str, str], tmp_path: Path) -> str:
    """A database of this test's own on the leg's engine (not the session's shared one: these
    tests read whole tables)."""
    if os.environ.get("SAMSYN_TEST_DB", "sqlite") == "postgres":
        return new_postgres_database(stack, f"bulk_{uuid.uuid4().hex[:10]}")
    return f"sqlite+aiosqlite:///{tmp_path}/bulk.db"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


def feed_rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "item_id": str(uuid.uuid4()),
            "org_id": "bulk-school",
            "type": "se.samsyn.school.absence.v1",
            "event_id": f"e-{i}",
            "source_org": "bulk-school",
            "source_kind": "school",
            "subject_pseudonym": "k1:bulk",
            "time": T0 + timedelta(seconds=i),
            "purpose": "early_support",
            "legal_ground": "consent",
            "statute": None if i % 2 else "OSL 10 kap. 1 §",
            "consent_id": None,
            "categories": ["attendance", f"ö-{i}"],
            "sealed": f"sealed-{i}",
        }
        for i in range(n)
    ]


def audit_rows(first_seq: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "seq": first_seq + i,
            "record_id": str(uuid.uuid4()),
            "time": T0 + timedelta(milliseconds=i),
            "actor_org": "bulk-router",
            "actor_client": None,
            "action": "decision",
            "subject_pseudonym": "k1:bulk",
            "event_id": f"e-{i}",
            "recipient_org": "bulk-health",
            "outcome": "allow" if i % 3 else "deny",
            "legal_ground": "consent",
            "purpose": "early_support",
            "categories_shared": ["attendance"],
            "categories_withheld": [],
            "reasons": [] if i % 3 else ["no_consent", "nothing_necessary"],
            "policy_revision": "rev",
            "decision_id": f"d-{i}",
            "statute": None,
            "review": None if i % 2 else False,
            "prev_hash": "0" * 64,
            "hash": f"{i:064d}",
        }
        for i in range(n)
    ]


async def stored(session: AsyncSession, table: Table, key: str, keys: list[str]) -> list[Any]:
    rows = await session.execute(select(table).where(table.c[key].in_(keys)))
    return sorted((r._asdict() for r in rows), key=lambda r: keys.index(r[key]))


def without(rows: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in names} for r in rows]


async def test_stores_what_an_insert_stores(sessions: async_sessionmaker[AsyncSession]) -> None:
    bulk, plain = feed_rows(250), feed_rows(250)  # they differ only in their item ids
    sealed, sealed_plain = audit_rows(1, 120), audit_rows(1001, 120)
    async with sessions() as session, session.begin():
        await insert_rows(session, FEED_ITEMS, bulk)
        await session.execute(insert(FEED_ITEMS), plain)
        await insert_rows(session, AUDIT_RECORDS, sealed)
        await session.execute(insert(AUDIT_RECORDS), sealed_plain)
    async with sessions() as session:
        got_bulk = await stored(session, FEED_ITEMS, "item_id", [r["item_id"] for r in bulk])
        got_plain = await stored(session, FEED_ITEMS, "item_id", [r["item_id"] for r in plain])
        audit = (await session.execute(select(AUDIT_RECORDS).order_by(AUDIT_RECORDS.c.seq))).all()
    assert len(got_bulk) == len(got_plain) == 250
    # The defaults of the columns left out, as an INSERT gives them.
    assert {r["withdrawal_notified"] for r in got_bulk} == {False}
    assert all(abs(r["created_at"] - datetime.now(UTC)) < timedelta(minutes=5) for r in got_bulk)
    assert without(got_bulk, "seq", "item_id", "created_at") == without(
        got_plain, "seq", "item_id", "created_at"
    )
    assert without(got_bulk, "seq", "created_at", "withdrawal_notified", "first_read_at") == bulk
    # One sequence for both: the bulk rows got theirs in order.
    seqs = [r["seq"] for r in got_bulk]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 250
    by_seq = [r._asdict() for r in audit]
    assert by_seq[:120] == sealed
    assert without(by_seq[:120], "seq", "record_id") == without(by_seq[120:], "seq", "record_id")


async def test_skipping_conflicts_keeps_the_first_row(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A key already stored, or twice in the batch, keeps its first row, without an error; the
    rest of the batch is stored (JSON of objects through the column's serializer)."""

    def routes(tag: str, ids: list[int]) -> list[dict[str, Any]]:
        return [
            {"source_org": "bulk-school", "event_id": f"e-{i}", "recipients": [{"org": tag}]}
            for i in ids
        ]

    async with sessions() as session, session.begin():
        await insert_rows(session, EVENT_ROUTES, routes("first", [1, 2]), skip_conflicts=True)
    async with sessions() as session, session.begin():
        again = routes("second", [2, 3, 3, 4])
        await insert_rows(session, EVENT_ROUTES, again, skip_conflicts=True)
    async with sessions() as session:
        got = (
            await session.execute(
                select(EVENT_ROUTES.c.event_id, EVENT_ROUTES.c.recipients).order_by(
                    EVENT_ROUTES.c.event_id
                )
            )
        ).all()
    assert [tuple(r) for r in got] == [
        ("e-1", [{"org": "first"}]),
        ("e-2", [{"org": "first"}]),
        ("e-3", [{"org": "second"}]),
        ("e-4", [{"org": "second"}]),
    ]


async def test_a_value_too_long_is_refused_not_cut(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """PostgreSQL refuses it (the arrays carry no length, the column does); SQLite keeps
    lengths as a hint and stores it whole, as a plain INSERT does."""
    rows = feed_rows(3)
    rows[1]["org_id"] = "x" * 64  # org_id is String(63)
    if database_url.startswith("postgresql"):
        with pytest.raises(DBAPIError, match="too long"):
            async with sessions() as session, session.begin():
                await insert_rows(session, FEED_ITEMS, rows)
        await nothing_left(sessions, rows)
        return
    async with sessions() as session, session.begin():
        await insert_rows(session, FEED_ITEMS, rows)
    async with sessions() as session:
        got = await stored(session, FEED_ITEMS, "item_id", [r["item_id"] for r in rows])
    assert got[1]["org_id"] == "x" * 64


async def test_a_repeated_key_is_an_integrity_error_and_nothing_stays(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = feed_rows(3)
    rows[2]["item_id"] = rows[0]["item_id"]
    with pytest.raises(IntegrityError):
        async with sessions() as session, session.begin():
            await insert_rows(session, FEED_ITEMS, rows)
    await nothing_left(sessions, rows)


async def test_rows_written_first_in_a_transaction_go_with_its_rollback(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The first thing a transaction does (a grouped publish's rows, before Kafka's answer):
    when the transaction fails afterwards, none of them stays."""
    rows = feed_rows(50)

    async def write_then_fail() -> None:
        async with sessions() as session, session.begin():
            await insert_rows(session, FEED_ITEMS, rows)
            raise RuntimeError("Kafka did not answer")

    with pytest.raises(RuntimeError, match="Kafka did not answer"):
        await write_then_fail()
    await nothing_left(sessions, rows)


async def test_an_unknown_column_is_refused_before_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = feed_rows(1)
    rows[0]["colour"] = "blue"
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError, match="colour"):
            await insert_rows(session, FEED_ITEMS, rows)


async def nothing_left(
    sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]
) -> None:
    async with sessions() as session:
        assert await stored(session, FEED_ITEMS, "item_id", [r["item_id"] for r in rows]) == []


async def test_stored_keys_finds_exactly_the_keys_the_table_holds(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    """Lists of many lengths, more lookups than PostgreSQL's five before a generic plan: stored
    keys, unknown ones, repeated ones and one longer than the column, each time exactly the
    stored ones. On PostgreSQL the custom plans asked for stay within the transaction."""
    mode = text("SELECT current_setting('plan_cache_mode')")
    rows = audit_rows(1, 600)
    async with sessions() as session, session.begin():
        await insert_rows(session, AUDIT_RECORDS, rows)
    held = [r["record_id"] for r in rows]
    rnd = random.Random(7)
    for size in (1, 2, 5, 40, 300, 599, 1_000, 2_000):
        some = rnd.sample(held, min(size, len(held)) // 2)
        asked = [*some, *(str(uuid.uuid4()) for _ in range(size - len(some))), *some[:3]]
        asked.append("x" * 40)  # record_id is String(36)
        rnd.shuffle(asked)
        async with sessions() as session, session.begin():
            assert await stored_keys(session, AUDIT_RECORDS.c.record_id, asked) == set(some)
    async with sessions() as session, session.begin():
        assert await stored_keys(session, AUDIT_RECORDS.c.record_id, []) == set()
        assert await stored_keys(session, FEED_ITEMS.c.item_id, held[:10]) == set()
        if database_url.startswith("postgresql"):
            assert (await session.execute(mode)).scalar() == "force_custom_plan"
    if database_url.startswith("postgresql"):
        async with sessions() as session:
            assert (await session.execute(mode)).scalar() == "auto"
