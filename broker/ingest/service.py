"""Accept one event: validate everything first, then write it durably, or write nothing."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from broker.auth.tokens import Caller
from broker.infra.bulk import insert_rows
from broker.infra.db import transaction, utcnow
from broker.infra.kafka import EVENTS
from broker.ingest.models import ACCEPTED_EVENTS, AcceptedEvent
from broker.policy.client import Admission, PolicyUnavailable
from broker.policy.input import Admissible, admission_inputs, social_services
from broker.privacy.payloads import event_ad, seal_personal, split_envelope
from broker.records import IngestedEvent
from broker.runtime.coalesce import Coalesced
from broker.runtime.metrics import ADMISSION_REMEMBERED, ADMISSION_UNANSWERED, EVENTS_ACCEPTED
from broker.runtime.state import AppState, OrgFacts
from broker.subjects.input import subject_of
from broker.web.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotRoutable,
    Problem,
    Unavailable,
)

log = structlog.get_logger("samsyn.ingest")


@dataclass(frozen=True)
class Accepted:
    event_id: str
    first_time: bool


def body_hash(envelope: dict[str, Any]) -> str:
    """SHA-256 of the envelope as compact JSON with sorted keys by the standard library. The
    idempotency ledger keeps these hashes, so their bytes must not change."""
    canonical = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """A validated event, ready to be written: what ``accepted_events`` and Kafka get."""

    envelope: dict[str, Any]
    digest: str
    pseudonym: str
    record: IngestedEvent

    @property
    def event_id(self) -> str:
        return str(self.envelope["id"])

    @property
    def source_org(self) -> str:
        return self.record.source_org


def _check(state: AppState, caller: Caller, body: Any) -> Admissible:
    """What one envelope must be on its own (schema, source, type, data, subject); raise a
    :class:`Problem` for the first thing wrong."""
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
    return Admissible(event_type, envelope, subject)


async def prepare(state: AppState, caller: Caller, body: Any) -> Prepared:
    """Validate one envelope, whichever HTTP content mode carried it; raise a :class:`Problem`
    for anything wrong, before anything is written."""
    [prepared] = await prepare_all(state, caller, [body])
    if isinstance(prepared, Problem):
        raise prepared
    return prepared


async def prepare_all(
    state: AppState, caller: Caller, bodies: list[Any]
) -> list[Prepared | Problem]:
    """Validate the envelopes of one publish, each on its own (its :class:`Problem`, or the
    event ready to be written), with one round trip per step for all of them: one database
    query and one OPA query for their admission, one look-up of their children's keys."""
    results: list[Prepared | Problem | None] = [None] * len(bodies)
    checked: list[tuple[int, Admissible]] = []
    for index, body in enumerate(bodies):
        try:
            checked.append((index, _check(state, caller, body)))
        except Problem as err:
            results[index] = err
    org = await state.organisation(caller.org) if checked else None
    if checked and org is None:
        for index, _ in checked:
            results[index] = Forbidden(f"organisation {caller.org!r} is not registered")
    elif checked and org is not None:
        refusals = await _admit(state, [event for _, event in checked], org)
        admitted = []
        for (index, event), refusal in zip(checked, refusals, strict=True):
            if refusal is None:
                admitted.append((index, event))
            else:
                results[index] = refusal
        pseudonyms = [state.keys.pseudonymiser.pseudonym(e.subject) for _, e in admitted]
        keys = await state.subject_keys.for_writing(pseudonyms) if admitted else {}
        for (index, event), pseudonym in zip(admitted, pseudonyms, strict=True):
            results[index] = _sealed(event.envelope, org, pseudonym, keys[pseudonym])
    done = [r for r in results if r is not None]
    assert len(done) == len(bodies), "every envelope has an outcome by now"
    return done


def _sealed(envelope: dict[str, Any], org: OrgFacts, pseudonym: str, key: AESGCM) -> Prepared:
    clear, personal = split_envelope(envelope)
    # One ciphertext for the Kafka record and the ledger row: the same associated data.
    sealed = seal_personal(key, personal, event_ad(org.id, envelope["id"]))
    record = IngestedEvent(
        source_org=org.id,
        source_kind=org.kind,
        subject_pseudonym=pseudonym,
        accepted_at=utcnow().isoformat(),
        envelope=clear,
        sealed=sealed,
    )
    return Prepared(envelope, body_hash(envelope), pseudonym, record)


def _row(event: Prepared) -> dict[str, Any]:
    return {
        "source_org": event.source_org,
        "event_id": event.event_id,
        "body_hash": event.digest,
        "subject_pseudonym": event.pseudonym,
        "type": event.envelope["type"],
        # The same clear part and ciphertext as the Kafka record.
        "envelope": event.record.envelope,
        "sealed": event.record.sealed,
    }


async def accept(state: AppState, caller: Caller, body: Any) -> Accepted:
    (result,) = await state.publishes([await prepare(state, caller, body)])
    if isinstance(result, Problem):
        raise result
    return result


def grouped_publishes(state: AppState) -> Coalesced[Prepared, Accepted | Problem]:
    """One-event publishes written together: those that arrive while a write is out go to the
    database and Kafka in the next one (``store_together``), as in a database's group commit.
    Each request spent more on its own transaction and Kafka round trip than on its row; a lone
    publish is written at once. Each event is still answered only once it is in Kafka and its
    ledger row is committed."""
    return Coalesced(lambda events: store_together(state, events), state.settings.max_batch_events)


async def store_alone(state: AppState, event: Prepared) -> Accepted:
    """Write one prepared event on its own, after the write of its group failed on an id met
    before: answered from its ledger row if it has one (a repeat, or a conflict), else its row
    and its Kafka record, or nothing. Tried twice: a concurrent request with the same id may
    win the insert and then roll back."""
    for _ in range(2):
        async with state.sessions() as session:
            existing = await session.get(AcceptedEvent, (event.source_org, event.event_id))
        if existing is not None:
            if existing.body_hash != event.digest:
                raise Conflict(
                    f"event {event.event_id!r} was accepted earlier with "
                    "another body; ids are idempotency keys"
                )
            return Accepted(event_id=event.event_id, first_time=False)
        try:
            async with transaction(state.sessions) as session:
                await session.execute(insert(ACCEPTED_EVENTS).values(**_row(event)))
                await state.kafka_writer.send(EVENTS, event.record, key=event.pseudonym)
        except IntegrityError:
            continue  # a concurrent request with the same id won the insert
        EVENTS_ACCEPTED.labels(event.envelope["type"]).inc()
        return Accepted(event_id=event.event_id, first_time=True)
    raise Unavailable(f"event {event.event_id!r} is being published concurrently; try again")


async def store_together(state: AppState, events: list[Prepared]) -> list[Accepted | Problem]:
    """Write prepared events: all of them in one database transaction that commits only once
    Kafka has acknowledged every record. If one of them was accepted before (or is being
    published concurrently, or twice among them), each is written on its own instead, so that
    one repeat does not hold up the rest."""
    if not events:
        return []
    try:
        async with transaction(state.sessions) as session:
            await insert_rows(session, ACCEPTED_EVENTS, [_row(e) for e in events])
            await state.kafka_writer.send_keyed(EVENTS, [(e.pseudonym, e.record) for e in events])
    except IntegrityError:
        results: list[Accepted | Problem] = []
        for event in events:
            try:
                results.append(await store_alone(state, event))
            except (Conflict, Unavailable) as err:
                results.append(err)
        return results
    for event_type, n in Counter(e.envelope["type"] for e in events).items():
        EVENTS_ACCEPTED.labels(event_type).inc(n)
    return [Accepted(event_id=e.event_id, first_time=True) for e in events]


# Where in the envelope the publisher can change what a refusal reason is about.
REFUSAL_POINTERS = {
    "type_not_allowed_for_ground": "/legalbasis",
    "purpose_not_allowed_for_ground": "/purpose",
    "source_kind_not_allowed": "/legalbasis",
    "age_limit_exceeded": "/subject",
    "municipality_not_for_this_source": "/municipality",
    "report_unreachable": "/municipality",
    "unknown_ground": "/legalbasis",
}


async def _admit(
    state: AppState, events: list[Admissible], org: OrgFacts
) -> list[NotRoutable | None]:
    """Refuse (422, nothing written) each event that the policy says can never be routed: a type
    its ground does not carry, a child over the ground's age limit, a report that can reach no
    one... The rule is the policy's (samsyn.admission), asked once for the ``events`` whose facts
    it has not answered in the last seconds (``broker/policy/memo.py``); an event without an
    answer from it is accepted and the router, which asks the same rules, holds it until it can
    decide."""
    facts = await admission_inputs(
        events, org, utcnow().date(), lambda munis: _with_social_services(state, munis)
    )
    memo = state.admission_memo
    keys = [memo.key(f) for f in facts]
    verdicts = [memo.get(k) for k in keys]
    asked = [i for i, verdict in enumerate(verdicts) if verdict is None]
    ADMISSION_REMEMBERED.inc(len(events) - len(asked))
    if asked:
        try:
            answers = await state.policy.admissions([facts[i] for i in asked])
        except PolicyUnavailable as err:
            log.warning("no admission verdict; accepting for the router to decide", error=str(err))
            answers = [None] * len(asked)
        for i, answer in zip(asked, answers, strict=True):
            verdicts[i] = answer
            if answer is not None:
                memo.put(keys[i], answer)
    refusals: list[NotRoutable | None] = []
    for verdict in verdicts:
        if verdict is None:
            ADMISSION_UNANSWERED.inc()
        refusals.append(None if verdict is None or verdict.admit else _not_routable(verdict))
    return refusals


async def _with_social_services(state: AppState, municipalities: set[str]) -> set[str]:
    """Which of these municipalities have social services (where a report can go). One found
    to have them is remembered for the process's lifetime (``AppState.social_services_known``);
    the others are asked each time, since social services may be registered there later. Every
    publish used to pay a transaction for this."""
    known = state.social_services_known
    unknown = municipalities - known
    if unknown:
        async with state.sessions() as session:
            known.update(await social_services(session, unknown))
    return municipalities & known


def _not_routable(verdict: Admission) -> NotRoutable:
    errors = [
        {"pointer": REFUSAL_POINTERS.get(reason, "/"), "detail": reason}
        for reason in verdict.reasons
    ]
    return NotRoutable(
        "Händelsen kan aldrig förmedlas enligt reglerna / the event can never be routed under "
        f"the rules: {', '.join(verdict.reasons)}",
        errors=errors,
    )
