"""A batched publish costs the round trips of one publish, not one per event: its events'
admission is one database query and one policy query, and their children's keys one look-up,
while each event still gets its own outcome (refused by the policy, invalid, or prepared)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from joserfc.jwk import KeySet
from prometheus_client import REGISTRY
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

import broker.audit.models  # noqa: F401  (the imports register every table on Base.metadata)
import consumers.models  # noqa: F401
from broker.auth.tokens import Caller
from broker.config import Settings
from broker.contracts import Contracts
from broker.infra.db import Base, make_engine, make_sessionmaker
from broker.infra.kafka_writer import KafkaWriter
from broker.infra.keys import load_keys, subject_keys_of
from broker.ingest.service import Prepared, accept, grouped_publishes, prepare_all
from broker.policy.client import Admission, PolicyClient
from broker.registry.models import Organisation
from broker.runtime.state import AppState
from broker.web.errors import Conflict, InvalidInput, NotRoutable
from tests.kit import child
from tests.kit.keylog import MemoryKeyLog

SCHOOL = "skola-1"


class CountingPolicy:
    """The admission answers of a policy that refuses children of 18 and over, and the
    queries it was asked."""

    def __init__(self) -> None:
        self.queries: list[list[dict[str, Any]]] = []

    async def admissions(self, events: list[dict[str, Any]]) -> list[Admission | None]:
        self.queries.append(events)
        return [
            Admission(admit=False, reasons=["age_limit_exceeded"])
            if e["age"] >= 18
            else Admission(admit=True, reasons=[])
            for e in events
        ]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/ingest.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        session.add(Organisation(id=SCHOOL, name="s", kind="school", municipality="1438"))
        session.add(Organisation(id="soc-1", name="s", kind="social_services", municipality="1438"))
    yield engine
    await engine.dispose()


def report(age: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"org/{SCHOOL}",
        "type": "se.backabarnet.mandatory.report.v1",
        "time": "2026-11-26T10:00:00Z",
        "subject": child(age),
        "datacontenttype": "application/json",
        "purpose": "mandatory_report",
        "legalbasis": "mandatory_report",
        "data": {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv."},
    }


async def state_of(engine: AsyncEngine, policy: CountingPolicy, settings: Settings) -> AppState:
    sessions = make_sessionmaker(engine)
    keys = await load_keys(settings, sessions)
    subject_keys = subject_keys_of(settings, sessions, keys, MemoryKeyLog())
    subject_keys.imported()
    return AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        keys=keys,
        subject_keys=subject_keys,
        contracts=Contracts(),
        kafka_writer=KafkaWriter(settings),
        policy=cast(PolicyClient, policy),
        local_keyset=KeySet([]),
    )


CALLER = Caller(client_id="c", org=SCHOOL, scopes=frozenset(), token_id="t")


async def test_a_batch_is_admitted_with_one_query_each(engine: AsyncEngine) -> None:
    policy = CountingPolicy()
    state = await state_of(engine, policy, Settings())
    invalid = {**report(7), "purpose": 3}
    bodies = [report(7), report(12), invalid, report(19), report(8)]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        results = await prepare_all(state, CALLER, bodies)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)

    assert [type(r) for r in results] == [Prepared, Prepared, InvalidInput, NotRoutable, Prepared]
    assert [r.event_id for r in results if isinstance(r, Prepared)] == [
        bodies[i]["id"] for i in (0, 1, 4)
    ]
    # One policy query for the four valid events, with the social services the report reaches.
    [asked] = policy.queries
    assert [e["age"] for e in asked] == [7, 12, 19, 8]
    assert {tuple(e["social_services_municipalities"]) for e in asked} == {("1438",)}
    # The database: the organisation once, the admission facts once, the children's keys once
    # (looked up, then the three new ones written).
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in selects if "organisations" in s]) == 2, selects
    assert len([s for s in selects if "subject_keys" in s]) == 1, selects


@pytest.mark.parametrize("memo_s", [2.0, 0.0])
async def test_admission_asks_only_for_facts_it_has_not_just_had_answered(
    engine: AsyncEngine, memo_s: float
) -> None:
    """The same facts (same type, ground, source, age...) within admission_memo_s get the
    answer OPA gave them (refusals too); new facts are asked; with 0 every publish asks."""
    policy = CountingPolicy()
    state = await state_of(engine, policy, Settings(admission_memo_s=memo_s))
    remembered = REGISTRY.get_sample_value("samsyn_ingest_admission_remembered_total") or 0.0
    first = await prepare_all(state, CALLER, [report(7), report(19)])
    again = await prepare_all(state, CALLER, [report(7), report(19), report(12)])
    assert REGISTRY.get_sample_value("samsyn_ingest_admission_remembered_total") == (
        remembered + (2 if memo_s else 0)
    )
    assert [type(r) for r in first] == [Prepared, NotRoutable]
    assert [type(r) for r in again] == [Prepared, NotRoutable, Prepared]
    asked = [[e["age"] for e in query] for query in policy.queries]
    assert asked == ([[7, 19], [12]] if memo_s else [[7, 19], [7, 19, 12]])


async def test_a_municipality_with_social_services_is_looked_up_once(engine: AsyncEngine) -> None:
    """Where a report can go is asked of the database until the municipality is found to have
    social services, and then never again (organisations are never removed); one without them
    is asked each time, so social services registered there count from the next publish."""
    policy = CountingPolicy()
    state = await state_of(engine, policy, Settings(admission_memo_s=0))
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "organisations" in statement:
            statements.append(statement)

    elsewhere = {**report(7), "source": "org/skola-2"}
    async with state.sessions() as session, session.begin():
        session.add(Organisation(id="skola-2", name="s", kind="school", municipality="1439"))
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            await prepare_all(state, CALLER, [report(7)])
        reach_1438 = len(statements) - 1  # the school's facts once
        caller_2 = Caller(client_id="c2", org="skola-2", scopes=frozenset(), token_id="t2")
        before = len(statements)
        await prepare_all(state, caller_2, [{**elsewhere, "id": str(uuid.uuid4())}])
        await prepare_all(state, caller_2, [{**elsewhere, "id": str(uuid.uuid4())}])
        asked_1439 = len(statements) - before - 1  # skola-2's facts once
        async with state.sessions() as session, session.begin():
            session.add(
                Organisation(id="soc-2", name="s", kind="social_services", municipality="1439")
            )
        await prepare_all(state, caller_2, [{**elsewhere, "id": str(uuid.uuid4())}])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert reach_1438 == 1, statements
    assert asked_1439 == 2, statements
    reached = [e["social_services_municipalities"] for q in policy.queries for e in q]
    assert reached == [["1438"]] * 3 + [[], [], ["1439"]]


class GatedWriter:
    """A Kafka writer that holds its writes while the gate is shut, and the records of each."""

    def __init__(self) -> None:
        self.writes: list[int] = []
        self.written = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_keyed(self, topic: str, keyed: list[tuple[str, Any]]) -> None:
        self.writes.append(len(keyed))
        self.written.set()
        await self.gate.wait()

    async def send(self, topic: str, value: Any, key: str | None = None) -> None:
        self.writes.append(1)


async def gated_state(engine: AsyncEngine) -> tuple[AppState, GatedWriter, dict[str, Any]]:
    """A state whose writer is gated, and a child whose key exists (a new child's key is
    written while its event is prepared, which SQLite would hold behind the gated write)."""
    state = await state_of(engine, CountingPolicy(), Settings())
    writer = GatedWriter()
    state.kafka_writer = cast(KafkaWriter, writer)
    state.publishes = grouped_publishes(state)
    known = report(7)
    await accept(state, CALLER, known)
    writer.writes.clear()
    writer.written.clear()
    writer.gate.clear()
    return state, writer, known["subject"]


def about(subject: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**report(7), "subject": subject, **changes}


async def accepted_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM accepted_events"))).scalar_one())


async def test_one_event_publishes_that_arrive_meanwhile_are_written_together(
    engine: AsyncEngine,
) -> None:
    state, writer, subject = await gated_state(engine)
    bodies = [about(subject) for _ in range(6)]
    first = asyncio.create_task(accept(state, CALLER, bodies[0]))
    await writer.written.wait()
    rest = [asyncio.create_task(accept(state, CALLER, b)) for b in bodies[1:]]
    await asyncio.sleep(0.2)  # all five are prepared and waiting for the write ahead of them
    assert not any(t.done() for t in [first, *rest])  # nobody is answered before Kafka is
    writer.gate.set()
    results = await asyncio.gather(first, *rest)

    assert writer.writes == [1, 5]
    assert [(r.event_id, r.first_time) for r in results] == [(b["id"], True) for b in bodies]
    assert await accepted_rows(engine) == 1 + 6
    again = await accept(state, CALLER, bodies[3])
    assert (again.event_id, again.first_time) == (bodies[3]["id"], False)


async def test_a_repeat_among_grouped_publishes_is_answered_as_a_repeat(
    engine: AsyncEngine,
) -> None:
    """The same id twice in one write fails its insert: each event is then written alone, one
    accepted, the other answered as the repeat it is; a different body under it is a conflict."""
    state, writer, subject = await gated_state(engine)
    body, other = about(subject), about(subject)
    changed = {**body, "time": "2026-11-27T10:00:00Z"}
    first = asyncio.create_task(accept(state, CALLER, about(subject)))
    await writer.written.wait()
    grouped = [asyncio.create_task(accept(state, CALLER, b)) for b in (body, other, body)]
    conflicting = asyncio.create_task(accept(state, CALLER, changed))
    await asyncio.sleep(0.2)
    writer.gate.set()
    await first
    results = await asyncio.gather(*grouped)
    with pytest.raises(Conflict):
        await conflicting

    assert [r.first_time for r in results] == [True, True, False]
    # The grouped write failed at its insert, before Kafka; then each went alone.
    assert writer.writes == [1, 1, 1]
    assert await accepted_rows(engine) == 1 + 3
