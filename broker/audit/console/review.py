"""The review queue: every emergency access and every disclosure with a ``review`` obligation is
open until an auditor records a verdict with a note. The verdict is a ``review.verdict`` audit
record; the item closes when the sealer has sealed it into the chain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from broker.audit.console.auth import csrf_valid, load_session
from broker.audit.console.pages import Viewer, audit, page, see_other, to_login
from broker.audit.followup import queue
from broker.audit.followup.models import ReviewItem
from broker.audit.followup.vocabulary import VERDICT, VERDICTS
from broker.audit.models import AuditRecord
from broker.auth.deps import StateDep
from broker.records import AuditAction
from broker.web.errors import InvalidInput, NotFound

router = APIRouter()
NOTE_MAX = 1000


def checked_verdict(verdict: str, note: str) -> tuple[str, str]:
    """The verdict and the note, or :class:`InvalidInput` (nothing is recorded)."""
    if verdict not in VERDICTS:
        raise InvalidInput(f"/verdict: one of {', '.join(VERDICTS)}")
    note = note.strip()
    if not note:
        raise InvalidInput("/note: say why (motivera bedömningen)")
    return verdict, note


@router.get("/review")
async def queue_page(
    request: Request,
    state: StateDep,
    user: Viewer,
    show: Annotated[str, Query(pattern="^(open|all)$")] = "open",
    org: Annotated[str, Query(max_length=63)] = "",
) -> Response:
    if user is None:
        return to_login()
    now = datetime.now(UTC)
    days = state.settings.audit_review_overdue_days
    async with state.sessions() as db:
        rows = await queue.items(db, open_only=show == "open", org=org.strip())
    await audit(state, user, AuditAction.ADMIN_AUDIT_REVIEW, reasons=[f"show={show}", f"org={org}"])
    context = {
        "user": user,
        "rows": rows,
        "show": show,
        "org": org,
        "overdue_before": queue.overdue_before(now, days),
        "overdue_days": days,
    }
    return page(request, "review.html", context)


@router.get("/review/{seq}")
async def item_page(
    seq: int, request: Request, state: StateDep, user: Viewer, sent: str = ""
) -> Response:
    if user is None:
        return to_login()
    async with state.sessions() as db:
        item = await db.get(ReviewItem, seq)
        rec = await db.get(AuditRecord, seq)
    if item is None or rec is None:
        raise NotFound(f"no review item {seq}")
    await audit(
        state,
        user,
        AuditAction.ADMIN_AUDIT_VIEW,
        subject_pseudonym=rec.subject_pseudonym,
        event_id=rec.event_id,
        reasons=[f"seq={seq}"],
    )
    context = {"user": user, "item": item, "rec": rec, "pending": bool(sent) and not item.verdict}
    return page(request, "review_item.html", context)


@router.post("/review/{seq}")
async def record_verdict(
    seq: int,
    request: Request,
    state: StateDep,
    user: Viewer,
    csrf: Annotated[str, Form(max_length=100)],
    verdict: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=NOTE_MAX)] = "",
) -> Response:
    if user is None or not csrf_valid(load_session(request), csrf):
        return to_login()
    verdict, note = checked_verdict(verdict, note)
    async with state.sessions() as db:
        item = await db.get(ReviewItem, seq)
    if item is None:
        raise NotFound(f"no review item {seq}")
    await audit(
        state,
        user,
        VERDICT,
        subject_pseudonym=item.subject_pseudonym,
        event_id=item.event_id,
        recipient_org=item.actor_org,
        reasons=queue.verdict_reasons(f"item:{seq}", verdict, note),
    )
    return see_other(f"/audit/review/{seq}?sent=1")
