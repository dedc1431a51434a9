"""The router's decision step against a stand-in OPA: every (event, recipient) pair of a batch is
decided by a query that named it, also when OPA times out on a query that large and the router
asks about fewer events at a time; a pair that no query answered is never allowed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from aiokafka.structs import TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import consumers.models  # noqa: F401
from broker.config import Settings
from broker.contracts import Contracts
from broker.infra.db import Base, make_engine, make_sessionmaker, utcnow
from broker.name_ids import event_millis
from broker.policy.client import PolicyAnswer, PolicyTimeout, PolicyUnavailable
from broker.privacy.kek import LocalKeks
from broker.privacy.payloads import (
    event_ad,
    feed_ad,
    open_personal,
    seal_personal,
    split_envelope,
)
from broker.records import (
    AuditAction,
    AuditEntry,
    Delivery,
    IngestedEvent,
    ParkedEvent,
    RoutingSummary,
    decode_ingested,
    encode,
)
from broker.registry.models import Organisation, Relationship
from broker.router.loop import EVENTS_PARKED, Router
from tests.kit import child
from tests.kit.keylog import key_ring

KEKS = LocalKeks({"k": bytes(range(32))}, "k")
CANDIDATES = {"eh-a": "student_health", "soc-a": "social_services", "police": "police"}


class FakeOpa:
    """Allows every candidate but the police; times out on queries over ``limit`` events."""

    def __init__(
        self, limit: int | None = None, failures: int = 0, faulty_purpose: str | None = None
    ) -> None:
        self.limit = limit
        self.failures = failures
        # Events with this purpose get a fault decision for every candidate, as from OPA.
        self.faulty_purpose = faulty_purpose
        self.queries: list[int] = []

    async def decide(self, batch: dict[str, Any]) -> PolicyAnswer:
        events = batch["events"]
        self.queries.append(len(events))
        if self.limit is not None and len(events) > self.limit:
            raise PolicyTimeout("OPA query failed: TimeoutError: ")
        if self.failures:
            self.failures -= 1
            raise PolicyUnavailable("OPA query failed: ClientConnectorError")
        decision_id = str(uuid.uuid4())
        allow = {"allow": True, "legal_ground": "consent", "categories": ["attendance"]}
        deny = {"allow": False, "reasons": ["consent_recipient_out_of_scope"]}
        faulted = {
            e["ref"]: ["malformed_input"] for e in events if e["purpose"] == self.faulty_purpose
        }
        return PolicyAnswer(
            faulted=faulted,
            decisions={
                e["ref"]: {
                    c["org"]: deny if c["kind"] == "police" else allow for c in e["candidates"]
                }
                for e in events
            },
            revision="test",
            decision_id=decision_id,
            seconds=0.001,
        )


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/router.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _world(sessions: async_sessionmaker[AsyncSession], children: int) -> list[Any]:
    """Records as the router reads them from events.v1: one attendance event per child, each
    child related to the three candidates."""
    records = []
    made: list[tuple[str, str, dict[str, Any]]] = []
    async with sessions() as session, session.begin():
        session.add(Organisation(id="school-a", name="s", kind="school", municipality="1438"))
        for org, kind in CANDIDATES.items():
            session.add(Organisation(id=org, name=org, kind=kind, municipality="1438"))
        await session.flush()
        for i in range(children):
            pseudonym = f"k1:{i:064x}"
            for org in CANDIDATES:
                session.add(
                    Relationship(
                        id=str(uuid.uuid4()),
                        subject_pseudonym=pseudonym,
                        org_id=org,
                        role="case_open" if org != "eh-a" else "enrolled",
                        declared_by_org=org,
                        valid_from=utcnow() - timedelta(days=1),
                    )
                )
            event_id = str(uuid.uuid4())
            envelope = {
                "id": event_id,
                "type": "se.backabarnet.attendance.flagged.v1",
                "subject": child(10),
                "purpose": "early_support",
                "legalbasis": "consent",
                "data": {"period_start": "2026-09-01", "absence_percent": 31.0},
            }
            made.append((pseudonym, event_id, envelope))
    keys = await key_ring(sessions, KEKS).for_writing([p for p, _, _ in made])
    for i, (pseudonym, event_id, envelope) in enumerate(made):
        clear, personal = split_envelope(envelope)
        value = IngestedEvent(
            source_org="school-a",
            source_kind="school",
            subject_pseudonym=pseudonym,
            accepted_at=utcnow().isoformat(),
            envelope=clear,
            sealed=seal_personal(keys[pseudonym], personal, event_ad("school-a", event_id)),
        )
        records.append(
            SimpleNamespace(
                value=encode(value), offset=i, event_id=event_id, subject=envelope["subject"]
            )
        )
    return records


def _router(sessions: async_sessionmaker[AsyncSession], opa: FakeOpa, batch_max: int) -> Router:
    settings = Settings(router_batch_max=batch_max)
    return Router(
        settings,
        sessions,
        Contracts(),
        opa,  # type: ignore[arg-type]
        key_ring(sessions, KEKS),
    )


def _decisions(produced: list[Any]) -> dict[tuple[str | None, str | None], AuditEntry]:
    return {
        (o.value.event_id, o.value.recipient_org): o.value
        for o in produced
        if isinstance(o.value, AuditEntry) and o.value.action == AuditAction.DECISION
    }


async def test_every_pair_is_decided_by_one_query(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    records = await _world(sessions, 10)
    opa = FakeOpa()
    decided = await _router(sessions, opa, 500)._decide(records, {TopicPartition("t", 0): 10})
    assert decided is not None
    assert opa.queries == [10]
    decisions = _decisions(decided.produced)
    assert len(decisions) == 10 * len(CANDIDATES)
    assert {d.decision_id for d in decisions.values()} != {None}
    deliveries = [o.value for o in decided.produced if isinstance(o.value, Delivery)]
    assert sorted({d.org for d in deliveries}) == ["eh-a", "soc-a"]
    # Each delivery carries the child's number and its slice sealed under the child's key.
    keys = await key_ring(sessions, KEKS).for_reading({d.subject_pseudonym for d in deliveries})
    subjects = {r.event_id: r.subject for r in records}
    for d in deliveries:
        opened = open_personal(keys[d.subject_pseudonym], d.sealed, feed_ad(d.delivery_id))
        assert opened.subject == subjects[d.event_id]
        assert "absence_percent" in opened.data


async def test_an_event_of_an_erased_child_is_denied_and_goes_nowhere(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Its key destroyed while the event waited: the event does not open, so it is not decided;
    a deny ``subject_erased`` and an empty routing summary say so."""
    records = await _world(sessions, 2)
    async with sessions() as session, session.begin():
        await key_ring(sessions, KEKS).shred(session, [f"k1:{0:064x}"])
    opa = FakeOpa()
    decided = await _router(sessions, opa, 500)._decide(records, {})
    assert decided is not None
    assert opa.queries == [1]
    gone = records[0].event_id
    assert [d.reasons for (e, _), d in _decisions(decided.produced).items() if e == gone] == [
        ["subject_erased"]
    ]
    summaries = {
        o.value.event_id: o.value.recipients
        for o in decided.produced
        if isinstance(o.value, RoutingSummary)
    }
    assert summaries[gone] == []
    assert len(summaries[records[1].event_id]) == len(CANDIDATES)
    assert not any(
        isinstance(o.value, Delivery) and o.value.event_id == gone for o in decided.produced
    )


async def test_a_timeout_splits_the_queries_and_every_pair_is_still_decided(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """OPA times out on more than 3 events: the batch of 10 is decided in smaller queries (no
    event skipped, none decided twice), each pair's audit record names the query that decided
    it, and the police is still never sent anything."""
    records = await _world(sessions, 10)
    opa = FakeOpa(limit=3)
    router = _router(sessions, opa, 500)
    decided = await router._decide(records, {TopicPartition("t", 0): 10})
    assert decided is not None
    answered = [n for n in opa.queries if n <= 3]
    assert sum(answered) == 10, opa.queries
    assert max(opa.queries[opa.queries.index(answered[0]) :]) <= 3
    decisions = _decisions(decided.produced)
    assert len(decisions) == 10 * len(CANDIDATES)
    assert all(d.outcome == "deny" for (_, org), d in decisions.items() if org == "police")
    assert len({d.decision_id for d in decisions.values()}) == len(answered)
    routed = [o.value.event_id for o in decided.produced if isinstance(o.value, RoutingSummary)]
    assert routed == [r.event_id for r in records]  # in order, each once
    # The next batch starts small and grows back after a batch without a timeout.
    opa.limit = None
    await router._decide(records, {})
    assert router._query_max > 3


async def test_an_outage_holds_the_batch_until_opa_answers(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errors other than a timeout do not shrink the query: the batch waits and is retried."""

    async def no_pause(*_: object) -> None:
        return None

    monkeypatch.setattr("broker.router.loop.pause", no_pause)
    records = await _world(sessions, 4)
    opa = FakeOpa(failures=2)
    decided = await _router(sessions, opa, 500)._decide(records, {})
    assert decided is not None
    assert opa.queries == [4, 4, 4]
    assert len(_decisions(decided.produced)) == 4 * len(CANDIDATES)


async def test_a_fault_for_one_event_parks_it_and_the_rest_is_routed(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The policy faults on one event of four: it is held for three queries, then parked on the
    dead-letter topic with an audit record and counted; the other three are decided and
    delivered in the same batch, and nothing of the parked one goes anywhere."""

    async def no_pause(*_: object) -> None:
        return None

    monkeypatch.setattr("broker.router.loop.pause", no_pause)
    records = await _world(sessions, 4)
    ingested = decode_ingested(records[1].value)
    bad = {**ingested.envelope, "purpose": "child_plan"}
    records[1].value = encode(msgspec.structs.replace(ingested, envelope=bad))
    opa = FakeOpa(faulty_purpose="child_plan")
    parked_before = EVENTS_PARKED._value.get()

    decided = await _router(sessions, opa, 500)._decide(records, {})

    assert decided is not None
    assert opa.queries == [4, 4, 4, 3]
    decisions = _decisions(decided.produced)
    decided_ids = {e for e, org in decisions if org is not None}
    assert decided_ids == {r.event_id for r in records} - {bad["id"]}
    (dead,) = [o.value for o in decided.produced if isinstance(o.value, ParkedEvent)]
    assert dead.envelope["id"] == bad["id"]
    assert dead.faults == ["malformed_input"]
    # The dead letter holds the child's number and data sealed, as events.v1 does.
    assert not {"subject", "data"} & set(dead.envelope)
    key = (await key_ring(sessions, KEKS).for_reading([dead.subject_pseudonym]))[
        dead.subject_pseudonym
    ]
    opened = open_personal(key, dead.sealed, event_ad("school-a", bad["id"]))
    assert opened.subject == records[1].subject
    assert "absence_percent" in opened.data
    (audit,) = [
        o.value
        for o in decided.produced
        if isinstance(o.value, AuditEntry) and o.value.event_id == bad["id"]
    ]
    assert audit.outcome == "deny"
    assert audit.reasons == ["parked_policy_fault", "malformed_input"]
    delivered = {o.value.event_id for o in decided.produced if isinstance(o.value, Delivery)}
    assert bad["id"] not in delivered
    assert EVENTS_PARKED._value.get() == parked_before + 1


async def test_ids_begin_with_the_events_time_and_are_made_again_alike(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Decided twice (a crash before the commit, or the event twice in events.v1 after the API
    stopped between Kafka and its ledger and the client sent it again), an event gets the same
    decision and delivery ids, whenever it was accepted: each begins with the event's own time
    (zero without one), for an erased child's too. So the read side keeps it once, and new rows
    go near the right edge of the unique indexes."""
    records = await _world(sessions, 4)
    times = ["2026-10-01T08:30:00.25Z", "2026-10-02t09:00:00+02:00", None, "2026-10-03T10:00:00Z"]
    for r, t in zip(records, times, strict=True):
        ingested = decode_ingested(r.value)
        envelope = {k: v for k, v in ingested.envelope.items() if k != "time"}
        r.value = encode(
            msgspec.structs.replace(ingested, envelope=envelope | ({"time": t} if t else {}))
        )
    async with sessions() as session, session.begin():
        await key_ring(sessions, KEKS).shred(session, [f"k1:{3:064x}"])
    expected = {r.event_id: event_millis(t) for r, t in zip(records, times, strict=True)}
    assert 0 in expected.values()  # one event without a time
    runs = []
    for _ in range(2):
        decided = await _router(sessions, FakeOpa(), 500)._decide(records, {})
        assert decided is not None
        runs.append(
            sorted(
                (o.value.event_id, o.value.recipient_org, o.value.record_id)
                if isinstance(o.value, AuditEntry)
                else (o.value.event_id, o.value.org, o.value.delivery_id)
                for o in decided.produced
                if isinstance(o.value, AuditEntry | Delivery)
            )
        )
        # Accepted again later: the same event, another acceptance time.
        for r in records:
            again = decode_ingested(r.value)
            r.value = encode(msgspec.structs.replace(again, accepted_at=utcnow().isoformat()))
    assert runs[0] == runs[1]
    assert {e for e, _, _ in runs[0]} == set(expected)
    assert any(org is None for _, org, _ in runs[0])  # the erased child's deny
    for event_id, _, made in runs[0]:
        u = uuid.UUID(made)
        assert (u.version, u.int >> 80) == (8, expected[event_id])
