"""Nödöppning (emergency access): what the ``emergency`` ground allows the caller right now.

The caller is decided as a candidate recipient of every event recorded about the child, by the
same policy input and projector the router uses; each event's decision is an audit record
carrying the stated reason, and each source that disclosed gets a notice in its feed.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import select

from broker.audit.followup.vocabulary import obligations
from broker.audit.records import record
from broker.infra.db import transaction, utcnow
from broker.ingest.models import AcceptedEvent
from broker.policy.client import PolicyUnavailable
from broker.policy.input import Pending, build_input
from broker.policy.projector import project
from broker.privacy.aead import Unreadable
from broker.privacy.payloads import event_ad, join_envelope, open_personal
from broker.records import AuditAction, AuditEntry
from broker.registry.models import Organisation
from broker.runtime.state import AppState
from broker.subjects.personnummer import Personnummer
from broker.web.errors import Forbidden, NotFound, Problem, Unavailable
from consumers.models import FeedItem, lock_feed
from consumers.notices import EMERGENCY_NOTICE, notice

NOTHING = "nothing about this child for your organisation"


async def emergency_access(
    *, state: AppState, caller_org_id: str, caller_client: str, pn: Personnummer, reason: str
) -> list[dict[str, Any]]:
    """The slices the caller may see; raises Forbidden (kind never a recipient), NotFound
    (nothing recorded or nothing allowed, alike) or Unavailable (no policy decision).

    An organisation of a kind that the ground does not name as a recipient gets Forbidden
    whatever the child, so the answer never tells it whether anything is recorded.
    """
    pseudonym = state.keys.pseudonymiser.pseudonym(pn)
    now = utcnow()

    async def refuse(code: str, problem: Problem) -> NoReturn:
        await state.emit_audit(
            record(
                action=AuditAction.EMERGENCY_ACCESS,
                outcome="refused",
                actor_org=caller_org_id,
                actor_client=caller_client,
                subject_pseudonym=pseudonym,
                legal_ground="emergency",
                purpose="emergency",
                reasons=[code, f"reason:{reason}"],
                review=True,
            )
        )
        raise problem

    try:
        ground = await state.policy.ground("emergency")
    except PolicyUnavailable as err:
        raise Unavailable("no policy decision can be had right now") from err
    async with transaction(state.sessions) as session:
        caller_org = await session.get(Organisation, caller_org_id)
        if caller_org is None or caller_org.kind not in ground.get("recipient_kinds", []):
            await refuse(
                "recipient_kind_not_allowed",
                Forbidden("emergency access is not open to organisations of your kind"),
            )
        rows = await session.execute(
            select(AcceptedEvent, Organisation.kind)
            .join(Organisation, Organisation.id == AcceptedEvent.source_org)
            .where(
                AcceptedEvent.subject_pseudonym == pseudonym,
                AcceptedEvent.source_org != caller_org_id,
            )
            .order_by(AcceptedEvent.accepted_at)
        )
        key = (await state.subject_keys.for_reading([pseudonym])).get(pseudonym)
        events = []
        for e, kind in rows.all():
            try:
                personal = open_personal(key, e.sealed, event_ad(e.source_org, e.event_id))
            except Unreadable:
                continue  # the child was erased (its key destroyed): nothing to disclose
            envelope = join_envelope(e.envelope, personal)
            events.append(
                Pending(
                    source_org=e.source_org,
                    source_kind=kind,
                    pseudonym=pseudonym,
                    envelope={**envelope, "purpose": "emergency", "legalbasis": "emergency"},
                )
            )
        if not events:
            await refuse("nothing_recorded", NotFound(NOTHING))
        policy_input = await build_input(
            session, state.contracts, events, now, only_recipient=caller_org_id
        )
        # The caller is the candidate, with its roles for the child if it has any, and with the
        # reason it stated: under the emergency ground that ties it to the child even without a
        # relationship (a patrol looking for a missing child). What it may see is the policy's.
        for item, ev in zip(policy_input["events"], events, strict=True):
            roles = item["candidates"][0]["roles"] if item["candidates"] else []
            item["candidates"] = ev.candidates = [
                {
                    "org": caller_org.id,
                    "kind": caller_org.kind,
                    "municipality": caller_org.municipality,
                    "roles": roles,
                    "stated_reason": True,
                }
            ]
        try:
            answer = await state.policy.decide(policy_input)
        except PolicyUnavailable as err:
            raise Unavailable("no policy decision can be had right now") from err
        if answer.faulted:
            raise Unavailable("no policy decision can be had right now")
        slices: list[dict[str, Any]] = []
        audits: list[AuditEntry] = []
        notices: list[FeedItem] = []
        for ref, ev in enumerate(events):
            decision = answer.decisions.get(str(ref), {}).get(caller_org_id) or {}
            allowed = decision.get("allow") is True
            categories = state.contracts.events[ev.envelope["type"]].categories
            data = project(ev.envelope["data"], categories, decision) if allowed else {}
            allowed = allowed and bool(data)
            audits.append(
                record(
                    action=AuditAction.EMERGENCY_ACCESS,
                    outcome="ok" if allowed else "refused",
                    actor_org=caller_org_id,
                    actor_client=caller_client,
                    subject_pseudonym=pseudonym,
                    event_id=ev.event_id,
                    recipient_org=caller_org_id,
                    legal_ground="emergency",
                    purpose="emergency",
                    categories_shared=decision.get("categories", []) if allowed else [],
                    reasons=[
                        *(decision.get("reasons") or []),
                        *(obligations(decision.get("obligations") or []) if allowed else []),
                        f"reason:{reason}",
                    ],
                    policy_revision=answer.revision,
                    decision_id=answer.decision_id,
                    statute=decision.get("statute"),
                    # Every nödöppning, granted or refused, is an open review item.
                    review=True,
                )
            )
            if not allowed:
                continue
            slices.append(
                {
                    "event_id": ev.event_id,
                    "type": ev.envelope["type"],
                    "time": ev.envelope.get("time"),
                    "source_kind": ev.source_kind,
                    "data": data,
                }
            )
            assert key is not None  # an event opened with it
            notices.append(
                notice(
                    key=key,
                    org=ev.source_org,
                    type=EMERGENCY_NOTICE,
                    event_id=ev.event_id,
                    subject=pn.digits,
                    subject_pseudonym=pseudonym,
                    data={
                        "event_id": ev.event_id,
                        "reader_org": caller_org_id,
                        "reason": reason,
                        "read_at": now.isoformat().replace("+00:00", "Z"),
                        "obligations": decision.get("obligations", []),
                    },
                )
            )
        await state.emit_audit(*audits)
        if notices:
            await lock_feed(session)
            session.add_all(notices)
    if not slices:
        raise NotFound(NOTHING)
    return slices
