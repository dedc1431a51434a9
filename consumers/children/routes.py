"""``GET /v1/children/{subject}`` and ``POST /v1/children/{subject}/emergency-access``."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from broker.audit.records import record
from broker.auth.deps import FeedReader, StateDep
from broker.db import transaction, utcnow
from broker.errors import Forbidden, NotFound, Problem, Unavailable
from broker.ingest.models import AcceptedEvent
from broker.openapi import PROBLEMS
from broker.registry.models import Consent, Organisation
from broker.router.batch import Pending, build_input
from broker.router.policy import PolicyUnavailable
from broker.router.projector import project
from broker.subjects.input import subject_of
from consumers.feed.routes import FeedItemOut
from consumers.models import FeedItem, lock_feed
from consumers.notices import EMERGENCY_NOTICE, notice
from consumers.reads import item_view, record_reads

router = APIRouter(tags=["children"])
NOTHING = "nothing about this child for your organisation"


class ChildView(BaseModel):
    subject: str
    slices: list[FeedItemOut] = Field(description="The latest delivery per event type")


class EmergencyIn(BaseModel):
    reason: str = Field(
        min_length=10, max_length=2000, description="Why there is an acute danger to life or health"
    )


class EmergencySlice(BaseModel):
    event_id: str
    type: str
    time: str | None
    source_kind: str
    data: dict[str, Any]


class EmergencyOut(BaseModel):
    subject: str
    legal_ground: str
    slices: list[EmergencySlice]


@router.get("/v1/children/{subject}", response_model=ChildView, responses=PROBLEMS)
async def child_view(subject: str, caller: FeedReader, state: StateDep) -> Any:
    """The caller's entitled view; 404 alike for an unknown child and for nothing-for-you."""
    try:
        pn = subject_of(subject, pointer="/subject")
    except Exception as err:
        raise NotFound(NOTHING) from err
    pseudonym = state.keys.pseudonymiser.pseudonym(pn)
    async with transaction(state.sessions) as session:
        withdrawn = select(Consent.id).where(Consent.withdrawn_at.is_not(None))
        rows = await session.execute(
            select(FeedItem)
            .where(
                FeedItem.org_id == caller.org,
                FeedItem.subject_pseudonym == pseudonym,
                FeedItem.source_org.is_not(None),
                (FeedItem.consent_id.is_(None)) | (FeedItem.consent_id.not_in(withdrawn)),
            )
            .order_by(FeedItem.seq.desc())
        )
        latest: dict[str, FeedItem] = {}
        for item in rows.scalars():
            latest.setdefault(item.type, item)
        if not latest:
            raise NotFound(NOTHING)
        items = sorted(latest.values(), key=lambda i: i.seq)
        await record_reads(
            state.emit_audit,
            session,
            items,
            reader_org=caller.org,
            reader_client=caller.client_id,
            action="child.read",
        )
    return {"subject": pn.digits, "slices": [item_view(i) for i in items]}


@router.post(
    "/v1/children/{subject}/emergency-access", response_model=EmergencyOut, responses=PROBLEMS
)
async def emergency_access(
    subject: str, body: EmergencyIn, caller: FeedReader, state: StateDep
) -> Any:
    """Nödöppning: what the ``emergency`` ground allows the caller, audited, sources notified.

    An organisation of a kind that the ground does not name as a recipient gets 403 whatever the
    child, so the answer never tells it whether anything is recorded; any other refusal is 404.
    """
    pn = subject_of(subject, pointer="/subject")
    pseudonym = state.keys.pseudonymiser.pseudonym(pn)
    now = utcnow()

    async def refuse(reason: str, problem: Problem) -> NoReturn:
        await state.emit_audit(
            record(
                action="emergency_access",
                outcome="refused",
                actor_org=caller.org,
                actor_client=caller.client_id,
                subject_pseudonym=pseudonym,
                legal_ground="emergency",
                purpose="emergency",
                reasons=[reason, f"reason:{body.reason}"],
            )
        )
        raise problem

    try:
        ground = await state.policy.ground("emergency")
    except PolicyUnavailable as err:
        raise Unavailable("no policy decision can be had right now") from err
    async with transaction(state.sessions) as session:
        caller_org = await session.get(Organisation, caller.org)
        if caller_org is None or caller_org.kind not in ground.get("recipient_kinds", []):
            await refuse(
                "recipient_kind_not_allowed",
                Forbidden("emergency access is not open to organisations of your kind"),
            )
        rows = await session.execute(
            select(AcceptedEvent, Organisation.kind)
            .join(Organisation, Organisation.id == AcceptedEvent.source_org)
            .where(
                AcceptedEvent.subject_pseudonym == pseudonym, AcceptedEvent.source_org != caller.org
            )
            .order_by(AcceptedEvent.accepted_at)
        )
        events = [
            Pending(
                source_org=e.source_org,
                source_kind=kind,
                report_municipality=None,
                pseudonym=pseudonym,
                envelope={**e.envelope, "purpose": "emergency", "legalbasis": "emergency"},
            )
            for e, kind in rows.all()
        ]
        if not events:
            await refuse("nothing_recorded", NotFound(NOTHING))
        policy_input = await build_input(
            session, state.contracts, events, now, only_recipient=caller.org
        )
        # In an emergency the caller is the candidate even without a relationship to the child;
        # whether its kind may receive anything is the policy's to say.
        me: dict[str, Any] = {
            "org": caller_org.id,
            "kind": caller_org.kind,
            "municipality": caller_org.municipality,
            "roles": [],
        }
        for item, ev in zip(policy_input["events"], events, strict=True):
            if not item["candidates"]:
                item["candidates"] = ev.candidates = [me]
        try:
            answer = await state.policy.decide(policy_input)
        except PolicyUnavailable as err:
            raise Unavailable("no policy decision can be had right now") from err
        slices: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        notices: list[FeedItem] = []
        for ref, ev in enumerate(events):
            decision = answer.decisions.get(str(ref), {}).get(caller.org) or {}
            allowed = decision.get("allow") is True
            categories = state.contracts.events[ev.envelope["type"]].categories
            data = project(ev.envelope["data"], categories, decision) if allowed else {}
            allowed = allowed and bool(data)
            audits.append(
                record(
                    action="emergency_access",
                    outcome="ok" if allowed else "refused",
                    actor_org=caller.org,
                    actor_client=caller.client_id,
                    subject_pseudonym=pseudonym,
                    event_id=ev.event_id,
                    recipient_org=caller.org,
                    legal_ground="emergency",
                    purpose="emergency",
                    categories_shared=decision.get("categories", []) if allowed else [],
                    reasons=[*(decision.get("reasons") or []), f"reason:{body.reason}"],
                    policy_revision=answer.revision,
                    decision_id=answer.decision_id,
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
            notices.append(
                notice(
                    org=ev.source_org,
                    type=EMERGENCY_NOTICE,
                    event_id=ev.event_id,
                    subject=pn.digits,
                    subject_pseudonym=pseudonym,
                    data={
                        "event_id": ev.event_id,
                        "reader_org": caller.org,
                        "reason": body.reason,
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
    return {"subject": pn.digits, "legal_ground": "emergency", "slices": slices}
