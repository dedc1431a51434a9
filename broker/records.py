"""Every record Samsyn writes to Kafka, typed once for its producer and all its consumers.

``events.v1``      :class:`IngestedEvent`, an accepted event (key: child pseudonym)
``deliveries.v1``  :class:`Delivery` and :class:`RoutingSummary`, told apart by ``kind``
                   (key: recipient, or the source for a summary)
``registry.v1``    :class:`ConsentCreated`, :class:`ConsentWithdrawn`, :class:`RelationshipCreated`,
                   :class:`RelationshipEnded`, told apart by ``kind`` (key: child pseudonym)
``audit.v1``       :class:`AuditEntry`, an audit record before the sealer chains it
``events.dlq.v1``  :class:`ParkedEvent`, an event the policy could not decide (key: pseudonym)
``keys.v1``        :class:`WrappedSubjectKey`, a child's data key wrapped by a KEK, or a tombstone
                   (no value) once it is destroyed (key: child pseudonym; compacted)

The bytes are compact JSON with sorted keys (what orjson with ``OPT_SORT_KEYS`` wrote before),
so records written by an older release read as before. Times stay ISO 8601 strings as written:
the audit hash covers them character for character (``broker/audit/chain.py``).

Decoding checks every field's type: a record that does not match raises
:class:`msgspec.ValidationError` (or :class:`msgspec.DecodeError` for bytes that are not JSON)
instead of yielding half a record.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

import msgspec


class AuditAction(StrEnum):
    """What an audit record records; the values are what the audit trail has always held."""

    DECISION = "decision"
    FEED_READ = "feed.read"
    CHILD_READ = "child.read"
    WEBHOOK_PUSH = "webhook.push"
    WEBHOOK_REGISTER = "webhook.register"
    WEBHOOK_REMOVE = "webhook.remove"
    EMERGENCY_ACCESS = "emergency_access"
    CONSENT_CREATE = "consent.create"
    CONSENT_WITHDRAW = "consent.withdraw"
    RELATIONSHIP_CREATE = "relationship.create"
    RELATIONSHIP_END = "relationship.end"
    ADMIN_ORGANISATION_CREATE = "admin.organisation.create"
    ADMIN_CLIENT_CREATE = "admin.client.create"
    ADMIN_CLIENT_DISABLE = "admin.client.disable"
    ADMIN_AUDIT_EXTRACT = "admin.audit.extract"
    ADMIN_AUDIT_LOGIN = "admin.audit.login"
    ADMIN_AUDIT_SEARCH = "admin.audit.search"
    ADMIN_AUDIT_VIEW = "admin.audit.view"
    ADMIN_AUDIT_VERIFY = "admin.audit.verify"
    ADMIN_AUDIT_EXPORT = "admin.audit.export"
    FOLLOWUP_READ = "followup.read"
    # The console's log follow-up: looking at its pages, and what the auditors record there.
    ADMIN_AUDIT_OVERVIEW = "admin.audit.overview"
    ADMIN_AUDIT_REVIEW = "admin.audit.review"
    ADMIN_AUDIT_SAMPLES = "admin.audit.samples"
    ADMIN_AUDIT_FLAGS = "admin.audit.flags"
    ADMIN_AUDIT_REPORT = "admin.audit.report"
    REVIEW_VERDICT = "review.verdict"
    REVIEW_SAMPLE = "review.sample"
    SUBJECT_SHRED = "subject.shred"
    SUBJECT_KEY_DESTROYED = "subject_key.destroyed"
    GALLRING = "gallring"


class Record(msgspec.Struct, kw_only=True, frozen=True):
    """Base of every wire record. Unknown fields are ignored, so a consumer reads records a
    newer producer wrote with fields added. (Each subclass repeats ``frozen=True``: msgspec
    inherits it, mypy does not.)"""


# ----------------------------------------------------------------------------- events.v1
class IngestedEvent(Record, frozen=True):
    """An accepted event as ingest writes it, with what the router needs of its source: the
    clear part of the validated envelope, and ``sealed``, its subject (normalised to twelve
    digits) and ``data`` under the child's key (``broker/privacy/payloads.py``)."""

    source_org: str
    source_kind: str
    subject_pseudonym: str
    accepted_at: str
    envelope: dict[str, Any]
    sealed: str


class ParkedEvent(Record, frozen=True):
    """``events.dlq.v1``: an accepted event the policy could not decide (a fault for that event
    alone, after retries), with the fault reasons, for an operator; its personal part sealed as
    in ``events.v1`` (same associated data, so it replays as it was)."""

    source_org: str
    source_kind: str
    subject_pseudonym: str
    envelope: dict[str, Any]
    sealed: str
    faults: list[str]
    parked_at: str


# ----------------------------------------------------------------------------- deliveries.v1
class Delivery(Record, frozen=True, tag_field="kind", tag="delivery"):
    """The slice of one event that one recipient may see; the child's number and the slice's
    ``data`` only in ``sealed``, under the child's key with the feed item's associated data."""

    delivery_id: str
    org: str
    event_id: str
    type: str
    subject_pseudonym: str
    time: str
    source_org: str
    source_kind: str
    purpose: str
    legal_ground: str | None
    consent_id: str | None
    categories: list[str]
    sealed: str
    obligations: list[Any]
    statute: str | None = None  # the lagrum the disclosure rests on (null before it was kept)


class RoutedRecipient(Record, frozen=True, omit_defaults=True):
    """One candidate recipient of a routed event and what it was given; ``delivery_id`` only
    where something was shared (left out of the JSON otherwise, as it always was)."""

    org: str
    shared: bool
    legal_ground: str | None
    categories: list[str]
    delivery_id: str | None = None


class RoutingSummary(Record, frozen=True, tag_field="kind", tag="routed"):
    """Where one event went, for its source's status query."""

    source_org: str
    event_id: str
    recipients: list[RoutedRecipient]


DeliveriesRecord = Delivery | RoutingSummary


# ----------------------------------------------------------------------------- registry.v1
class RegistryChange(Record, frozen=True, tag_field="kind"):
    """A consent or relationship change, by the client that made it."""

    org: str
    client: str


class ConsentCreated(RegistryChange, frozen=True, tag="consent.created"):
    consent_id: str


class ConsentWithdrawn(RegistryChange, frozen=True, tag="consent.withdrawn"):
    consent_id: str


class RelationshipCreated(RegistryChange, frozen=True, tag="relationship.created"):
    relationship_id: str
    role: str
    for_org: str


class RelationshipEnded(RegistryChange, frozen=True, tag="relationship.ended"):
    relationship_id: str


RegistryRecord = ConsentCreated | ConsentWithdrawn | RelationshipCreated | RelationshipEnded


# ----------------------------------------------------------------------------- keys.v1
class WrappedSubjectKey(Record, frozen=True):
    """A child's data key as the database holds it: wrapped by the KEK ``kek_id``, bound to the
    pseudonym (``broker/privacy/kek.py``). Never the key in clear."""

    pseudonym: str
    kek_id: str
    wrapped_key: bytes  # base64 in the JSON


# ----------------------------------------------------------------------------- audit.v1
class AuditEntry(Record, frozen=True):
    """An audit record as produced; the sealer adds ``seq``, ``prev_hash`` and ``hash``. Every
    field is written, null or empty where it does not apply (the hash covers them all)."""

    record_id: str
    time: str
    actor_org: str | None
    actor_client: str | None
    action: str  # an AuditAction value; a str here, so the sealer chains any action it reads
    subject_pseudonym: str | None
    event_id: str | None
    recipient_org: str | None
    outcome: str
    legal_ground: str | None
    purpose: str | None
    categories_shared: list[str]
    categories_withheld: list[str]
    reasons: list[str]
    policy_revision: str | None
    decision_id: str | None
    # Added later, so records written before read as null (and the chain hashes them only where
    # set, broker/audit/chain.py): the statute a disclosure rests on, and whether it is an open
    # review item.
    statute: str | None = None
    review: bool | None = None


# ----------------------------------------------------------------------------- bytes
# "sorted": struct fields and dict keys alike, as orjson's OPT_SORT_KEYS wrote them.
_encoder: Final = msgspec.json.Encoder(order="sorted")
_ingested: Final = msgspec.json.Decoder(IngestedEvent)
_deliveries: Final = msgspec.json.Decoder(DeliveriesRecord)
_registry: Final = msgspec.json.Decoder(RegistryRecord)
_audit: Final = msgspec.json.Decoder(AuditEntry)
_wrapped_key: Final = msgspec.json.Decoder(WrappedSubjectKey)


def encode(value: Any) -> bytes:
    """Compact JSON with sorted keys: a record, or any JSON value (an envelope, say)."""
    return _encoder.encode(value)


def decode_ingested(raw: bytes) -> IngestedEvent:
    return _ingested.decode(raw)


def decode_deliveries(raw: bytes) -> DeliveriesRecord:
    return _deliveries.decode(raw)


def decode_registry(raw: bytes) -> RegistryRecord:
    return _registry.decode(raw)


def decode_audit(raw: bytes) -> AuditEntry:
    return _audit.decode(raw)


def decode_wrapped_key(raw: bytes) -> WrappedSubjectKey:
    return _wrapped_key.decode(raw)
