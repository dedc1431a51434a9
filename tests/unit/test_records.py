"""The wire records of :mod:`broker.records`: each survives a round trip as it was, its bytes
are the compact, key-sorted JSON that Samsyn has always written (so records already in Kafka
still read), the audit hash is the one the dict-shaped record had, and a record that is not
what its topic holds is refused whole."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from broker.audit.chain import GENESIS, record_hash
from broker.audit.console.search import ACTIONS
from broker.audit.records import record
from broker.records import (
    AuditAction,
    AuditEntry,
    ConsentCreated,
    ConsentWithdrawn,
    Delivery,
    IngestedEvent,
    Record,
    RelationshipCreated,
    RelationshipEnded,
    RoutedRecipient,
    RoutingSummary,
    decode_audit,
    decode_deliveries,
    decode_ingested,
    decode_registry,
    encode,
)
from broker.router.loop import Router
from consumers.feed.materializer import decode

PSEUDONYM = "k1:" + "ab" * 32
INGESTED = IngestedEvent(
    source_org="skola-a",
    source_kind="school",
    report_municipality=None,
    subject_pseudonym=PSEUDONYM,
    accepted_at="2026-11-26T10:00:00.123456+00:00",
    envelope={
        "id": "e-1",
        "type": "se.backabarnet.attendance.flagged.v1",
        "purpose": "early_support",
    },
    sealed="aead1:AAAA",
)
DELIVERY = Delivery(
    delivery_id="d-1",
    org="eh-a",
    event_id="e-1",
    type="se.backabarnet.attendance.flagged.v1",
    subject_pseudonym=PSEUDONYM,
    time="2026-11-26T10:00:00Z",
    source_org="skola-a",
    source_kind="school",
    purpose="early_support",
    legal_ground="consent",
    consent_id="c-1",
    categories=["attendance"],
    sealed="aead1:BBBB",
    obligations=["review"],
)
SUMMARY = RoutingSummary(
    source_org="skola-a",
    event_id="e-1",
    recipients=[
        RoutedRecipient(org="eh-a", shared=True, legal_ground="consent", categories=["attendance"]),
        RoutedRecipient(org="police", shared=False, legal_ground=None, categories=[]),
    ],
)
AUDIT = record(
    action=AuditAction.DECISION,
    outcome="allow",
    actor_org="skola-a",
    subject_pseudonym=PSEUDONYM,
    event_id="e-1",
    recipient_org="eh-a",
    legal_ground="consent",
    categories_shared=["attendance"],
    reasons=["allowed"],
)
REGISTRY = [
    ConsentCreated(org="skola-a", client="skola-a-app", consent_id="c-1"),
    ConsentWithdrawn(org="skola-a", client="skola-a-app", consent_id="c-1"),
    RelationshipCreated(
        org="eh-a", client="eh-a-app", relationship_id="r-1", role="enrolled", for_org="eh-a"
    ),
    RelationshipEnded(org="eh-a", client="eh-a-app", relationship_id="r-1"),
]
SAMPLES: list[tuple[Record, Any]] = [
    (INGESTED, decode_ingested),
    (DELIVERY, decode_deliveries),
    (SUMMARY, decode_deliveries),
    (AUDIT, decode_audit),
    *((change, decode_registry) for change in REGISTRY),
]


@pytest.mark.parametrize(("value", "read"), SAMPLES, ids=lambda v: type(v).__name__)
def test_every_record_survives_a_round_trip(value: Record, read: Any) -> None:
    again = read(encode(value))
    assert type(again) is type(value)
    assert again == value


@pytest.mark.parametrize(("value", "read"), SAMPLES, ids=lambda v: type(v).__name__)
def test_the_bytes_are_compact_json_with_sorted_keys(value: Record, read: Any) -> None:
    """What the dict records were written as (orjson, sorted keys): the same bytes as the
    standard library's canonical form of the same value, tag (``kind``) included."""
    raw = encode(value)
    as_json = json.loads(raw)
    assert (
        raw
        == json.dumps(as_json, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert read(raw) == value


def test_the_tag_and_omitted_fields_are_as_before() -> None:
    """Deliveries and summaries carry ``kind``; a recipient given nothing has no
    ``delivery_id`` at all (not a null), as the summaries always had."""
    assert json.loads(encode(DELIVERY))["kind"] == "delivery"
    summary = json.loads(encode(SUMMARY))
    assert summary["kind"] == "routed"
    assert "delivery_id" not in summary["recipients"][1]
    assert [json.loads(encode(c))["kind"] for c in REGISTRY] == [
        "consent.created",
        "consent.withdrawn",
        "relationship.created",
        "relationship.ended",
    ]


def test_a_record_written_by_the_dict_producers_still_reads() -> None:
    """A withdrawal as registry routes wrote it before the records were typed."""
    old = b'{"client":"skola-a-app","consent_id":"c-1","kind":"consent.withdrawn","org":"skola-a"}'
    assert decode_registry(old) == REGISTRY[1]


def test_the_audit_hash_is_the_hash_of_the_record_as_read() -> None:
    """The sealer hashes the decoded entry; that is the hash of the JSON the producer wrote."""
    written = json.loads(encode(AUDIT))
    sealed = {**msgspec.structs.asdict(decode_audit(encode(AUDIT))), "seq": 1}
    assert record_hash(GENESIS, sealed) == record_hash(GENESIS, {**written, "seq": 1})


MALFORMED = [
    b"",
    b"not json",
    b"null",
    b'{"kind":"delivery"}',  # fields missing
    b'{"kind":"something.else","source_org":"s","event_id":"e","recipients":[]}',
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_a_malformed_record_is_refused_whole(raw: bytes) -> None:
    for read in (decode_ingested, decode_deliveries, decode_registry, decode_audit):
        with pytest.raises(msgspec.DecodeError):
            read(raw)


def test_a_wrong_type_is_refused_not_coerced() -> None:
    """A field of the wrong type fails the record (no string taken for a list, say)."""
    bad = {**json.loads(encode(DELIVERY)), "categories": "attendance"}
    with pytest.raises(msgspec.ValidationError, match=r"\$\.categories"):
        decode_deliveries(json.dumps(bad).encode())
    bad = {**json.loads(encode(AUDIT)), "reasons": None}
    with pytest.raises(msgspec.ValidationError):
        decode_audit(json.dumps(bad).encode())


def test_the_router_skips_an_event_it_cannot_read_and_routes_a_good_one() -> None:
    assert Router._ingested(b'{"source_org":"s"}') is None
    assert Router._ingested(None) is None
    assert Router._ingested(encode(INGESTED)) == INGESTED


def test_the_materializer_reads_each_topic_as_its_records() -> None:
    assert decode("samsyn.deliveries.v1", encode(DELIVERY)) == DELIVERY
    assert decode("samsyn.registry.v1", encode(REGISTRY[1])) == REGISTRY[1]
    with pytest.raises(msgspec.DecodeError):
        decode("samsyn.registry.v1", encode(DELIVERY))  # a delivery is no registry change


def test_the_console_suggests_every_action() -> None:
    assert set(ACTIONS) == {a.value for a in AuditAction}
    assert {"webhook.push", "webhook.register", "webhook.remove"} <= set(ACTIONS)


def test_an_audit_entry_holds_the_action_as_its_plain_value() -> None:
    assert isinstance(AUDIT, AuditEntry)
    assert type(AUDIT.action) is str
    assert AUDIT.action == "decision"
