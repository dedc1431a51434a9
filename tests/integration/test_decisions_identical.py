"""Decisions identical: a fixed corpus of events, decided by the router's decision step against
the real OPA with the repo's policies, gives byte for byte the output records in
``golden/decisions.jsonl`` (deliveries with their opened slices, routing summaries, audit
records), times and the ids OPA draws normalised.

Every kind of event, every source kind, every purpose and legal ground, consents valid,
withdrawn, expired, of another child or narrowed to named organisations, relationships
active, ended and not yet begun, reports with and without a municipality extension, and a child
erased while its event waited. A change of the router, the policy input or the policies that
moves a slice, a ground, a reason or an audit field fails this test. To accept such a change on
purpose: ``SAMSYN_GOLDEN_WRITE=1`` rewrites the golden file; review its diff like code.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
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
from broker.policy.client import PolicyClient
from broker.privacy.kek import LocalKeks
from broker.privacy.payloads import event_ad, feed_ad, open_personal, seal_personal, split_envelope
from broker.records import AuditEntry, Delivery, IngestedEvent, ParkedEvent, encode
from broker.registry.models import Consent, Organisation, Relationship
from broker.router.loop import Router
from broker.router.outputs import Output
from tests.kit import child
from tests.kit.keylog import key_ring

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).parent / "golden" / "decisions.jsonl"
KEKS = LocalKeks({"k": bytes(range(32))}, "k")
MUNICIPALITIES = ("1438", "1460")
LOCAL_KINDS = ("preschool", "school", "student_health", "social_services")
ROLES = {
    "preschool": ("enrolled", "barnkontakt", "barnteam_member"),
    "school": ("enrolled", "barnkontakt", "barnteam_member", "stodsamordnare"),
    "student_health": ("enrolled", "barnteam_member", "sip_participant"),
    "social_services": ("case_open", "barnteam_member", "stodsamordnare"),
    "health": ("listed", "barnteam_member", "sip_participant"),
    "police": ("case_open", "barnteam_member"),
}
# (purpose, legal basis) pairs a publisher may state; the policy decides what they allow.
GROUNDS = (
    ("early_support", "consent"),
    ("child_plan", "consent"),
    ("early_support", "care_support_u18"),
    ("child_plan", "care_support_u18"),
    ("crime_prevention", "crime_prevention_u21"),
    ("emergency", "emergency"),
    ("social_services_inquiry", "social_services_inquiry"),
    ("mandatory_report", "mandatory_report"),
)
AGES = (4, 9, 13, 16, 19, 23)
CHILDREN = 12
EVENTS_PER_CHILD = 24
# Consents of each kind, by child: the scope, who gave it, and what became of it.
CONSENT_KINDS = ("valid", "withdrawn", "expired", "to_orgs", "child_gave", "none", "other_child")


def _org_id(kind: str, muni: str | None) -> str:
    return f"corpus-{kind.replace('_', '-')}-{muni or 'regional'}"


def _organisations() -> list[Organisation]:
    orgs = [
        Organisation(id=_org_id(kind, m), name=f"{kind} {m}", kind=kind, municipality=m)
        for m in MUNICIPALITIES
        for kind in LOCAL_KINDS
    ]
    orgs += [
        Organisation(id=_org_id("health", None), name="vc", kind="health", municipality=None),
        Organisation(id=_org_id("police", None), name="polis", kind="police", municipality=None),
    ]
    return orgs


def _examples(contracts: Contracts) -> dict[str, list[dict[str, Any]]]:
    """Every event type's schema examples: the data the corpus's events carry."""
    root = Path(__file__).parents[2] / "schemas" / "events"
    out = {}
    for name in sorted(contracts.events):
        short = name.removeprefix("se.backabarnet.").removesuffix(".v1")
        schema = json.loads((root / f"{short}.v1.json").read_text())
        out[name] = schema["examples"]
    return out


class Corpus:
    """The fixed world: organisations, children (pseudonyms ``corpus:N``), their relationships
    and consents, and the records the router reads, all from one seeded generator. Times are
    relative to ``now`` (what the policy compares), so the decisions do not age."""

    def __init__(self, now: datetime) -> None:
        self.rng = random.Random(18)  # a fixed corpus, not a secret
        self.now = now
        self.orgs = _organisations()
        self.children = [
            (f"corpus:{i:02d}", child(AGES[i % len(AGES)]), CONSENT_KINDS[i % len(CONSENT_KINDS)])
            for i in range(CHILDREN)
        ]
        self.labels = {number: pseudonym for pseudonym, number, _ in self.children}

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def registry(self) -> tuple[list[Relationship], list[Consent]]:
        rels: list[Relationship] = []
        consents: list[Consent] = []
        day = timedelta(days=1)
        for i, (pseudonym, _, consent_kind) in enumerate(self.children):
            muni = MUNICIPALITIES[i % 2]
            for org in self.orgs:
                if org.municipality not in (None, muni) or self.rng.random() < 0.2:
                    continue
                role = self.rng.choice(ROLES[org.kind])
                # Mostly active; some ended, some only from next week, some over already.
                state = self.rng.choice(("active",) * 6 + ("ended", "future", "expired"))
                rels.append(
                    Relationship(
                        id=self.uuid(),
                        subject_pseudonym=pseudonym,
                        org_id=org.id,
                        role=role,
                        declared_by_org=org.id,
                        valid_from=self.now + (7 * day if state == "future" else -30 * day),
                        valid_until=self.now - day if state == "expired" else None,
                        ended_at=self.now - 2 * day if state == "ended" else None,
                    )
                )
            if consent_kind == "none":
                continue
            scope: dict[str, Any] = {
                "from_kinds": ["school", "preschool", "student_health"],
                "to_kinds": ["student_health", "health", "social_services", "school"],
                "categories": self.rng.sample(
                    ["attendance", "concern", "concern_detail", "health", "wellbeing", "support"],
                    k=4,
                ),
                "purposes": ["early_support", "child_plan"],
            }
            if consent_kind == "to_orgs":
                scope = {
                    **scope,
                    "to_kinds": [],
                    "to_orgs": [_org_id("health", None), _org_id("social_services", muni)],
                }
            consents.append(
                Consent(
                    id=f"00000000-0000-4000-8000-{i:012d}",
                    subject_pseudonym=(
                        self.children[(i + 1) % CHILDREN][0]
                        if consent_kind == "other_child"
                        else pseudonym
                    ),
                    recorded_by_org=_org_id("school", muni),
                    given_by=["child"] if consent_kind == "child_gave" else ["guardian"],
                    scope=scope,
                    valid_from=self.now - 10 * day,
                    valid_until=self.now + (-day if consent_kind == "expired" else 300 * day),
                    withdrawn_at=self.now - day if consent_kind == "withdrawn" else None,
                )
            )
        return rels, consents

    def envelopes(self, contracts: Contracts) -> list[tuple[str, str, dict[str, Any]]]:
        """(source org, child pseudonym, whole envelope) for each event of the corpus."""
        examples = _examples(contracts)
        types = sorted(examples)
        out = []
        for i, (pseudonym, number, _) in enumerate(self.children):
            muni = MUNICIPALITIES[i % 2]
            sources = [o for o in self.orgs if o.municipality in (None, muni)]
            for n in range(EVENTS_PER_CHILD):
                source = self.rng.choice(sources)
                event_type = types[(i + n) % len(types)]
                purpose, basis = GROUNDS[(i * 7 + n) % len(GROUNDS)]
                if basis == "mandatory_report" and self.rng.random() < 0.7:
                    event_type = "se.backabarnet.mandatory.report.v1"
                data = dict(self.rng.choice(examples[event_type]))
                if len(data) > 1 and self.rng.random() < 0.3:
                    data.pop(sorted(data)[-1])  # some events without one of their fields
                env: dict[str, Any] = {
                    "specversion": "1.0",
                    "id": self.uuid(),
                    "source": f"org/{source.id}",
                    "type": event_type,
                    "time": f"2026-10-{1 + n:02d}T08:{i:02d}:00Z",
                    "subject": number,
                    "datacontenttype": "application/json",
                    "purpose": purpose,
                    "legalbasis": basis,
                    "data": data,
                }
                if basis == "consent":
                    env["consentref"] = f"00000000-0000-4000-8000-{i:012d}"
                if purpose == "mandatory_report" and source.municipality is None:
                    env["municipality"] = self.rng.choice((*MUNICIPALITIES, "0180"))
                out.append((source.id, pseudonym, env))
        return out


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/corpus.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _records(
    sessions: async_sessionmaker[AsyncSession], corpus: Corpus, contracts: Contracts
) -> list[Any]:
    """The corpus as the router reads it from events.v1 (sealed as ingest seals it); the
    registry in the database."""
    rels, consents = corpus.registry()
    async with sessions() as session, session.begin():
        session.add_all(corpus.orgs)
        await session.flush()
        session.add_all([*rels, *consents])
    kinds = {o.id: o.kind for o in corpus.orgs}
    made = corpus.envelopes(contracts)
    keys = await key_ring(sessions, KEKS).for_writing(sorted({p for _, p, _ in made}))
    records = []
    for offset, (source, pseudonym, envelope) in enumerate(made):
        clear, personal = split_envelope(envelope)
        value = IngestedEvent(
            source_org=source,
            source_kind=kinds[source],
            subject_pseudonym=pseudonym,
            accepted_at="2026-10-31T12:00:00+00:00",
            envelope=clear,
            sealed=seal_personal(keys[pseudonym], personal, event_ad(source, envelope["id"])),
        )
        records.append(SimpleNamespace(value=encode(value), offset=offset, timestamp=0))
    # The last child is erased while its events wait: they do not open any more.
    async with sessions() as session, session.begin():
        await key_ring(sessions, KEKS).shred(session, [corpus.children[-1][0]])
    return records


async def _normalised(
    produced: list[Output], sessions: async_sessionmaker[AsyncSession], corpus: Corpus
) -> list[str]:
    """One JSON line per output record in the order produced: sealed parts opened (the
    ciphertext is random), the child's number as its corpus label, the decision time and the
    ids OPA draws (decision id, bundle revision) as placeholders."""
    keys = await key_ring(sessions, KEKS).for_reading({p for p, _, _ in corpus.children})
    lines = []
    for out in produced:
        value: dict[str, Any] = msgspec.to_builtins(out.value)
        if isinstance(out.value, Delivery | ParkedEvent):
            ad = (
                feed_ad(out.value.delivery_id)
                if isinstance(out.value, Delivery)
                else event_ad(out.value.source_org, str(out.value.envelope["id"]))
            )
            personal = open_personal(keys[out.value.subject_pseudonym], out.value.sealed, ad)
            subject = corpus.labels[str(personal.subject)]
            value["sealed"] = {"subject": subject, "data": personal.data}
        if isinstance(out.value, ParkedEvent):
            value["parked_at"] = "<now>"
        if isinstance(out.value, AuditEntry):
            value["time"] = "<now>"
            value["decision_id"] = "<decision>" if value["decision_id"] else None
            value["policy_revision"] = "<revision>" if value["policy_revision"] else None
        line = {"topic": out.topic, "key": out.key, "value": value}
        lines.append(json.dumps(line, sort_keys=True, ensure_ascii=False))
    return lines


async def test_the_corpus_decides_as_the_golden_file(
    stack: dict[str, str], sessions: async_sessionmaker[AsyncSession]
) -> None:
    contracts = Contracts()
    corpus = Corpus(utcnow())
    records = await _records(sessions, corpus, contracts)
    async with PolicyClient(stack["SAMSYN_OPA_URL"], timeout_s=60) as policy:
        router = Router(
            Settings(router_batch_max=len(records)),
            sessions,
            contracts,
            policy,
            key_ring(sessions, KEKS),
        )
        decided = await router._decide(records, {TopicPartition("events", 0): len(records)})
    assert decided is not None
    lines = await _normalised(decided.produced, sessions, corpus)
    text = "\n".join(lines) + "\n"
    if os.environ.get("SAMSYN_GOLDEN_WRITE") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    # The corpus reaches what it is for: allows under every ground, denials, a report, consent
    # denials of each kind, a child erased.
    golden = GOLDEN.read_text(encoding="utf-8")
    grounds = {
        json.loads(line)["value"].get("legal_ground")
        for line in golden.splitlines()
        if '"outcome": "allow"' in line
    }
    assert grounds >= {
        "consent",
        "care_support_u18",
        "crime_prevention_u21",
        "emergency",
        "mandatory_report",
        "social_services_inquiry",
    }, grounds
    assert '"subject_erased"' in golden
    assert text == golden
