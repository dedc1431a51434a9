"""Accept one event: validate everything first, then write it durably, or write nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from broker.auth.tokens import Caller
from broker.infra.db import transaction, utcnow
from broker.infra.kafka import EVENTS
from broker.ingest.models import AcceptedEvent
from broker.privacy.payloads import event_ad, seal_personal, split_envelope
from broker.records import IngestedEvent
from broker.runtime.metrics import EVENTS_ACCEPTED
from broker.runtime.state import AppState
from broker.subjects.input import subject_of
from broker.web.errors import Conflict, Forbidden, InvalidInput, MalformedBody, Unavailable


@dataclass(frozen=True)
class Accepted:
    event_id: str
    first_time: bool


def body_hash(envelope: dict[str, Any]) -> str:
    """SHA-256 of the envelope as compact JSON with sorted keys by the standard library. The
    idempotency ledger keeps these hashes, so their bytes must not change."""
    canonical = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise MalformedBody("the body is empty; send a CloudEvents 1.0 JSON envelope")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedBody(f"the body is not valid JSON: {err}") from err


async def accept(state: AppState, caller: Caller, body: Any, *, attempt: int = 1) -> Accepted:
    contracts = state.contracts
    errors = contracts.envelope_errors(body)
    if errors:
        raise InvalidInput(f"{errors[0]['pointer']}: {errors[0]['detail']}", errors=errors)
    envelope: dict[str, Any] = dict(body)
    if envelope["source"] != f"org/{caller.org}":
        raise Forbidden(f"source must be 'org/{caller.org}', the organisation of your client")
    event_type = contracts.events.get(envelope["type"])
    if event_type is None:
        known = ", ".join(sorted(contracts.events))
        raise InvalidInput(
            f"/type: unknown event type {envelope['type']!r}; known: {known}",
            errors=[{"pointer": "/type", "detail": "unknown event type"}],
        )
    errors = contracts.data_errors(event_type, envelope["data"])
    if errors:
        raise InvalidInput(f"{errors[0]['pointer']}: {errors[0]['detail']}", errors=errors)
    subject = subject_of(envelope["subject"], pointer="/subject")
    envelope["subject"] = subject.digits

    org = await state.organisation(caller.org)
    if org is None:
        raise Forbidden(f"organisation {caller.org!r} is not registered")
    report_municipality = envelope.get("municipality") or org.municipality
    if event_type.name == "mandatory.report" and report_municipality is None:
        raise InvalidInput(
            "/municipality: an organisation without a municipality names the municipality "
            "whose social services receive the report",
            errors=[{"pointer": "/municipality", "detail": "required for this source"}],
        )

    pseudonym = state.keys.pseudonymiser.pseudonym(subject)
    digest = body_hash(envelope)
    key = (await state.subject_keys.for_writing([pseudonym]))[pseudonym]
    clear, personal = split_envelope(envelope)
    # One ciphertext for the Kafka record and the ledger row: the same associated data.
    sealed = seal_personal(key, personal, event_ad(org.id, envelope["id"]))
    record = IngestedEvent(
        source_org=org.id,
        source_kind=org.kind,
        report_municipality=report_municipality,
        subject_pseudonym=pseudonym,
        accepted_at=utcnow().isoformat(),
        envelope=clear,
        sealed=sealed,
    )
    if attempt > 1:
        async with state.sessions() as session:
            existing = await session.get(AcceptedEvent, (org.id, envelope["id"]))
        if existing is not None:
            if existing.body_hash != digest:
                raise Conflict(
                    f"event {envelope['id']!r} was accepted earlier with "
                    "another body; ids are idempotency keys"
                )
            return Accepted(event_id=envelope["id"], first_time=False)
    try:
        # Insert first: a new id (nearly every publish) costs no lookup; a repeated one fails
        # the insert on the primary key and is answered from the row it met.
        async with transaction(state.sessions) as session:
            # A statement rather than session.add(): no unit of work to flush for one row.
            await session.execute(
                insert(AcceptedEvent).values(
                    source_org=org.id,
                    event_id=envelope["id"],
                    body_hash=digest,
                    subject_pseudonym=pseudonym,
                    type=envelope["type"],
                    envelope=clear,
                    sealed=sealed,
                )
            )
            await state.kafka_writer.send(EVENTS, record, key=pseudonym)
    except IntegrityError:
        # Accepted before, or a concurrent request with the same id won the insert: answer as
        # a repeat (or insert after all, if that request's transaction rolled back).
        if attempt >= 3:
            raise Unavailable(
                f"event {envelope['id']!r} is being published concurrently; try again"
            ) from None
        return await accept(state, caller, body, attempt=attempt + 1)
    EVENTS_ACCEPTED.labels(envelope["type"]).inc()
    return Accepted(event_id=envelope["id"], first_time=True)
