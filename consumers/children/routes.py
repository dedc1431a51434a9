"""``GET /v1/children/{subject}`` and ``POST /v1/children/{subject}/emergency-access``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from broker.auth.deps import FeedReader, StateDep
from broker.infra.db import transaction
from broker.records import AuditAction
from broker.registry.models import Consent
from broker.subjects.input import subject_of
from broker.web.errors import NotFound
from broker.web.openapi import PROBLEMS
from consumers.children import service
from consumers.children.service import NOTHING
from consumers.feed.routes import FeedItemOut
from consumers.models import FeedItem
from consumers.reads import Opened, item_view, opened, record_reads

router = APIRouter(tags=["children"])


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
        latest: dict[str, Opened] = {}
        for shown in await opened(state.subject_keys, list(rows.scalars())):
            latest.setdefault(shown.item.type, shown)
        if not latest:
            raise NotFound(NOTHING)
        items = sorted(latest.values(), key=lambda s: s.item.seq)
        await record_reads(
            state.emit_audit,
            session,
            items,
            reader_org=caller.org,
            reader_client=caller.client_id,
            action=AuditAction.CHILD_READ,
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
    slices = await service.emergency_access(
        state=state,
        caller_org_id=caller.org,
        caller_client=caller.client_id,
        pn=pn,
        reason=body.reason,
    )
    return {"subject": pn.digits, "legal_ground": "emergency", "slices": slices}
