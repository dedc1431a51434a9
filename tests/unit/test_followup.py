"""The follow-up tables follow the chain: the sealer counts records per day, queues emergency
accesses and disclosures with a review obligation, closes an item when a verdict about it is
sealed, stores a drawn sample; a rebuild from the chain (``catch_up``) gives the same tables;
unusual access is flagged from them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import REGISTRY
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import broker.audit.followup.models
import broker.audit.models  # noqa: F401  (registers the tables)
from broker.audit.followup import projection
from broker.audit.followup.flags import flags
from broker.audit.followup.models import (
    AuditDaily,
    DailyChild,
    DailyReader,
    FollowupState,
    ReviewItem,
    ReviewSample,
)
from broker.audit.followup.overview import chain_state, overview
from broker.audit.followup.queue import refresh_overdue
from broker.audit.records import record
from broker.audit.sealer import Sealer
from broker.config import Settings
from broker.infra.db import Base, make_engine, make_sessionmaker
from broker.records import AuditAction as A
from broker.records import AuditEntry
from broker.registry.models import Organisation, Relationship

KEY = Ed25519PrivateKey.generate()
HOURS = (7, 18)


def at(day: int, hour: int) -> datetime:
    """December 2026: the 1st is a Tuesday; Stockholm is UTC+1."""
    return datetime(2026, 12, day, hour - 1, 30, tzinfo=UTC)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/followup.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def seal(sessions: async_sessionmaker[AsyncSession], *records: AuditEntry) -> None:
    sealer = Sealer(Settings(), sessions, KEY, "k1")
    async with sessions() as session, session.begin():
        await sealer.seal(session, list(records))
        await sealer.checkpoint(session)


def trail() -> list[AuditEntry]:
    return [
        record(action=A.DECISION, outcome="allow", actor_org="skola", recipient_org="eh",
               subject_pseudonym="p1", legal_ground="consent", reasons=["allowed"], time=at(1, 9)),
        record(action=A.DECISION, outcome="deny", actor_org="skola", recipient_org="polis",
               subject_pseudonym="p1", reasons=["no_consent"], time=at(1, 9)),
        record(action=A.DECISION, outcome="allow", actor_org="vc", recipient_org="soc",
               subject_pseudonym="p2", legal_ground="care_support_u18",
               reasons=["allowed", "obligation:review"], time=at(2, 10)),
        record(action=A.FEED_READ, outcome="ok", actor_org="eh", subject_pseudonym="p1",
               time=at(1, 10)),
        record(action=A.FEED_READ, outcome="ok", actor_org="eh", subject_pseudonym="p1",
               time=at(1, 11)),
        record(action=A.FEED_READ, outcome="ok", actor_org="eh", subject_pseudonym="p3",
               time=at(1, 22)),
        record(action=A.CHILD_READ, outcome="ok", actor_org="soc", subject_pseudonym="p2",
               time=at(5, 10)),  # a Saturday
        record(action=A.EMERGENCY_ACCESS, outcome="ok", actor_org="soc", recipient_org="soc",
               subject_pseudonym="p2", legal_ground="emergency",
               reasons=["obligation:review", "reason:akut"], time=at(2, 12)),
        record(action=A.EMERGENCY_ACCESS, outcome="refused", actor_org="skola",
               subject_pseudonym="p2", legal_ground="emergency", time=at(2, 12)),
    ]  # fmt: skip


async def snapshot(session: AsyncSession) -> dict[str, Any]:
    async def rows(model: Any) -> list[tuple[Any, ...]]:
        cols = list(model.__table__.columns)
        return sorted(tuple(r) for r in (await session.execute(select(*cols))).all())

    return {
        m.__tablename__: await rows(m)
        for m in (AuditDaily, DailyChild, DailyReader, ReviewItem, ReviewSample)
    }


async def test_sealing_counts_and_queues(sessions: async_sessionmaker[AsyncSession]) -> None:
    await seal(sessions, *trail()[:5])
    await seal(sessions, *trail()[5:])
    async with sessions() as session:
        seen = await overview(
            session, date(2026, 12, 1), date(2026, 12, 31), "",
            now=at(3, 12), overdue_days=14,
        )  # fmt: skip
        items = (await session.execute(select(ReviewItem).order_by(ReviewItem.seq))).scalars()
        readers = {(r.day.day, r.org): r.children for r in (await session.execute(
            select(DailyReader))).scalars()}  # fmt: skip
        off = {
            (r.action, r.off_hours): r.count
            for r in (await session.execute(select(AuditDaily))).scalars()
            if r.action.endswith(".read")
        }
    assert seen.totals == {"allowed": 2, "denied": 1, "reads": 4, "emergency": 1, "refused": 1}
    assert seen.grounds == {"consent": 1, "care_support_u18": 1}
    assert seen.per_day[date(2026, 12, 1)] == {
        "allowed": 1, "denied": 1, "reads": 3, "emergency": 0, "refused": 0,
    }  # fmt: skip
    # A source is not credited with the decisions about its recipients.
    assert seen.per_org["eh"]["reads"] == 3
    assert seen.per_org["eh"]["allowed"] == 1
    assert "skola" in seen.per_org
    assert seen.per_org["skola"]["allowed"] == 0
    assert seen.per_org["skola"]["refused"] == 1
    assert (seen.marked_for_review, seen.open_items, seen.overdue_items) == (1, 2, 0)
    assert [(i.action, i.actor_org) for i in items] == [
        ("decision", "vc"),
        ("emergency_access", "soc"),
    ]
    assert readers == {(1, "eh"): 2, (5, "soc"): 1}
    # 22:30 on a Tuesday and 10:30 on a Saturday are outside office hours.
    assert off == {("feed.read", False): 2, ("feed.read", True): 1, ("child.read", True): 1}


async def test_a_verdict_closes_its_item(sessions: async_sessionmaker[AsyncSession]) -> None:
    await seal(sessions, *trail())
    async with sessions() as session:
        emergency = await session.scalar(
            select(ReviewItem.seq).where(ReviewItem.action == "emergency_access")
        )
    verdict = record(
        action=A.REVIEW_VERDICT, outcome="ok", actor_org="tillsyn", actor_client="local:anna",
        reasons=[f"item:{emergency}", "verdict:justified", "note:Akut fara, rätt bedömt."],
    )  # fmt: skip
    await seal(sessions, verdict)
    async with sessions() as session:
        item = await session.get(ReviewItem, emergency)
        seen = await overview(
            session, date(2026, 12, 1), date(2026, 12, 31), "soc", now=at(30, 12), overdue_days=14
        )
    assert item is not None
    assert (item.verdict, item.note, item.reviewed_by) == (
        "justified", "Akut fara, rätt bedömt.", "local:anna",
    )  # fmt: skip
    assert item.verdict_seq == len(trail()) + 1
    # The decision to soc is still open, and older than 14 days on the 30th.
    assert (seen.open_items, seen.overdue_items) == (1, 1)
    async with sessions() as session:
        await refresh_overdue(session, at(30, 12), 14)
        assert REGISTRY.get_sample_value("samsyn_audit_reviews_overdue") == 1
        await refresh_overdue(session, at(30, 12), 60)
        assert REGISTRY.get_sample_value("samsyn_audit_reviews_overdue") == 0


async def test_catch_up_rebuilds_the_same_tables(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sample = record(
        action=A.REVIEW_SAMPLE, outcome="ok", actor_org="tillsyn", actor_client="local:anna",
        reasons=["org:eh", "month:2026-12", "seed:abc", "population:3", "reads:4,6"],
    )  # fmt: skip
    await seal(sessions, *trail()[:4])
    await seal(sessions, *trail()[4:], sample)
    async with sessions() as session:
        before = await snapshot(session)
        (stored,) = (await session.execute(select(ReviewSample))).scalars()
    assert (stored.org, stored.month, stored.seed, stored.population, stored.read_seqs) == (
        "eh", "2026-12", "abc", 3, ["4", "6"],
    )  # fmt: skip
    async with sessions() as session, session.begin():
        for model in (AuditDaily, DailyChild, DailyReader, ReviewItem, ReviewSample):
            await session.execute(delete(model))
        await session.execute(delete(FollowupState))
    await Sealer(Settings(), sessions, KEY, "k1").catch_up()
    async with sessions() as session:
        assert await snapshot(session) == before
        assert await projection.projected_seq(session) == len(trail()) + 1


async def test_chain_state_checks_the_last_checkpoint(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seal(sessions, *trail())
    keys = {"k1": KEY.public_key()}
    async with sessions() as session:
        good = await chain_state(session, keys)
        wrong = await chain_state(session, {"k1": Ed25519PrivateKey.generate().public_key()})
    assert (good.records, good.checkpoint_seq, good.checkpoint_ok) == (9, 9, True)
    assert not wrong.checkpoint_ok


def read(org: str, child: str, moment: datetime, action: A = A.FEED_READ) -> AuditEntry:
    return record(action=action, outcome="ok", actor_org=org, subject_pseudonym=child, time=moment)


async def test_unusual_access_is_flagged_and_explained(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Each measure flags the organisation that crosses it and not the one just below."""
    november = [datetime(2026, 11, d, 9, 0, tzinfo=UTC) for d in range(2, 28, 2)]
    baseline = [read("eh", f"k{d.day % 2}", d) for d in november] + [
        read("eh", "k9", d) for d in november
    ]
    spike = [read("eh", f"k{n}", at(2, 9)) for n in range(12)]
    no_baseline = [read("bvc", f"k{n}", at(2, 9)) for n in range(20)]
    evenings = [read("soc", "k1", at(d, 22), A.CHILD_READ) for d in (1, 2, 3)]
    pushes = [read("eh", "k1", at(d, 22), A.WEBHOOK_PUSH) for d in (1, 2, 3)]
    after_end = [read("polis", "k7", at(4, 10)), read("polis", "k7", at(2, 10))]
    still_related = [read("skola", "k7", at(4, 10))]
    refusals = [
        *(record(action=A.EMERGENCY_ACCESS, outcome="refused", actor_org="skola",
                 time=at(2, 10)) for _ in range(3)),
        *(record(action=A.EMERGENCY_ACCESS, outcome="refused", actor_org="vc",
                 time=at(2, 10)) for _ in range(2)),
    ]  # fmt: skip
    async with sessions() as session, session.begin():
        for org, kind in (("polis", "police"), ("skola", "school")):
            session.add(Organisation(id=org, name=org, kind=kind, municipality="1480"))
        await session.flush()
        nov1 = datetime(2026, 11, 1, tzinfo=UTC)
        session.add_all(
            [
                Relationship(id="r1", subject_pseudonym="k7", org_id="polis", role="case_open",
                             declared_by_org="polis", valid_from=nov1, ended_at=at(3, 1)),
                Relationship(id="r2", subject_pseudonym="k7", org_id="skola", role="enrolled",
                             declared_by_org="skola", valid_from=nov1, valid_until=at(3, 1)),
                Relationship(id="r3", subject_pseudonym="k7", org_id="skola", role="enrolled",
                             declared_by_org="skola", valid_from=at(3, 1)),
            ]
        )  # fmt: skip
    await seal(sessions, *baseline)
    await seal(sessions, *spike, *no_baseline, *evenings, *pushes, *after_end, *still_related)
    await seal(sessions, *refusals)
    async with sessions() as session:
        found = await flags(session, date(2026, 12, 1), date(2026, 12, 31))
        only_soc = await flags(session, date(2026, 12, 1), date(2026, 12, 31), "soc")
        before = await flags(session, date(2026, 12, 1), date(2026, 12, 3))
    by_kind = {(f.kind, f.org): f for f in found}
    assert set(by_kind) == {
        ("many_children", "eh"),
        ("off_hours", "soc"),
        ("after_relationship", "polis"),
        ("refused", "skola"),
    }
    assert "read 12 distinct children" in by_kind["many_children", "eh"].explanation
    assert "ordinary day of the 60 days before, 2.0" in by_kind["many_children", "eh"].explanation
    assert "3 of 3 reads" in by_kind["off_hours", "soc"].explanation
    assert "Read 1 children on 1 days after" in by_kind["after_relationship", "polis"].explanation
    assert "3 refused attempts on 2026-12-02" in by_kind["refused", "skola"].explanation
    assert by_kind["refused", "skola"].search["outcome"] == "refused"
    assert [(f.kind, f.org) for f in only_soc] == [("off_hours", "soc")]
    assert ("after_relationship", "polis") not in {(f.kind, f.org) for f in before}


def test_office_hours_lie_within_a_day() -> None:
    assert Settings(audit_office_hours=(8, 17)).audit_office_hours == (8, 17)
    for bad in ((18, 7), (7, 7), (-1, 10), (7, 25)):
        with pytest.raises(ValueError, match="SAMSYN_AUDIT_OFFICE_HOURS"):
            Settings(audit_office_hours=bad)
