"""The auditors' API (scope ``audit:read``): search, verify, a child's log extract."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel

from broker.audit import service
from broker.audit.models import AuditRecord
from broker.audit.records import record
from broker.auth.deps import Auditor, StateDep
from broker.infra.keys import pem
from broker.records import AuditAction
from broker.runtime.state import AppState
from broker.subjects.input import subject_of
from broker.times import rfc3339
from broker.web.cursors import decode_cursor, encode_cursor
from broker.web.errors import InvalidInput
from broker.web.openapi import PROBLEMS
from broker.web.params import CURSOR, DATE_TIME, PERSONNUMMER, TIME_PATTERN, SubjectPath

router = APIRouter(tags=["audit"])
PAGE = 200
ACTION_LABELS = {
    AuditAction.DECISION: "Mottog / Received",
    AuditAction.FEED_READ: "Läste (flöde) / Read (feed)",
    AuditAction.CHILD_READ: "Läste (barnvy) / Read (child view)",
    AuditAction.WEBHOOK_PUSH: "Skickades (webhook) / Pushed (webhook)",
    AuditAction.EMERGENCY_ACCESS: "Nödöppning / Emergency access",
    AuditAction.SUBJECT_SHRED: "Raderades på begäran / Erased on request",
    AuditAction.SUBJECT_KEY_DESTROYED: "Gallrades / Erased at the end of retention",
}
EXTRACT_ACTIONS = tuple(ACTION_LABELS)


class AuditRecordOut(BaseModel):
    seq: int
    record_id: str
    time: str
    actor_org: str | None
    actor_client: str | None
    action: str
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
    statute: str | None = None
    review: bool | None = None
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecordOut]
    next: str | None


class VerifyOut(BaseModel):
    ok: bool
    records: int
    head: str
    first_bad_seq: int | None
    problem: str | None


def _pseudonyms(state: AppState, subject: str | None) -> list[str] | None:
    if subject is None:
        return None
    return state.keys.pseudonymiser.candidates(subject_of(subject, pointer="/subject"))


# The schemas' date-time pattern (years 1900-2999, real month and day ranges); the format
# tells generators to draw real dates (no 30 February).
RFC3339 = TIME_PATTERN


def _time(value: str | None, pointer: str) -> datetime | None:
    if value is None:
        return None
    try:
        return rfc3339(value)
    except ValueError as err:
        raise InvalidInput(
            f"{pointer}: {err}", errors=[{"pointer": pointer, "detail": str(err)}]
        ) from err


@router.get("/v1/audit/records", response_model=AuditPage, responses=PROBLEMS)
async def records(
    caller: Auditor,
    state: StateDep,
    subject: str | None = Query(
        default=None,
        pattern=PERSONNUMMER,
        description="The child's personnummer",
        json_schema_extra={"format": "personnummer"},
    ),
    org: str | None = Query(default=None, description="Actor or recipient organisation"),
    start: str | None = Query(
        default=None,
        alias="from",
        pattern=RFC3339,
        json_schema_extra=DATE_TIME,
        description="From this time (RFC 3339 with a zone), inclusive",
    ),
    end: str | None = Query(
        default=None,
        alias="to",
        pattern=RFC3339,
        json_schema_extra=DATE_TIME,
        description="Until this time (RFC 3339 with a zone), exclusive",
    ),
    outcome: Literal["allow", "deny", "ok", "refused"] | None = None,
    action: str | None = Query(default=None, max_length=40),
    legal_ground: str | None = Query(default=None, max_length=40),
    cursor: str | None = Query(default=None, max_length=200, json_schema_extra=CURSOR),
    limit: int = Query(default=PAGE, ge=1, le=1000),
) -> Any:
    q = service.search(
        pseudonyms=_pseudonyms(state, subject),
        org=org,
        start=_time(start, "/from"),
        end=_time(end, "/to"),
        outcome=outcome,
        action=action,
        legal_ground=legal_ground,
        after_seq=decode_cursor(cursor, pointer="/cursor") if cursor else 0,
    ).limit(limit)
    async with state.sessions() as session:
        rows = list((await session.execute(q)).scalars())
    return {
        "items": [service.as_dict(r) for r in rows],
        # Always a position to resume from, so a client can poll the trail's end.
        "next": encode_cursor(rows[-1].seq) if rows else cursor,
    }


@router.get("/v1/audit/verify", response_model=VerifyOut, responses=PROBLEMS)
async def verify(caller: Auditor, state: StateDep) -> Any:
    """Recompute the whole chain and check every signed checkpoint."""
    async with state.sessions() as session:
        verdict = await service.verify_chain(session, state.keys.audit_public_keys)
    return verdict.as_dict()


@router.get("/v1/audit/export", responses=PROBLEMS)
async def export(caller: Auditor, state: StateDep) -> Any:
    """The chain and checkpoints as JSON, for ``samsyn audit-verify --export FILE`` offline;
    streamed, so its length is bounded by disk, not by the server's memory."""
    return StreamingResponse(service.export(state.sessions), media_type="application/json")


@router.get("/v1/audit/public-keys")
async def public_keys(state: StateDep) -> dict[str, str]:
    """Every checkpoint key id with its Ed25519 public key (PEM): the current and the previous."""
    return {kid: pem(key) for kid, key in sorted(state.keys.audit_public_keys.items())}


@router.get("/v1/audit/public-key", response_class=PlainTextResponse)
async def public_key(state: StateDep) -> str:
    """The Ed25519 public key (PEM) that verifies audit checkpoints."""
    return pem(state.keys.audit.public_key())


REASON_PREFIX = "reason:"
GRANTED_LABELS = {True: "Beviljad / Granted", False: "Nekad / Refused"}


def _extract_rows(rows: list[AuditRecord]) -> list[dict[str, Any]]:
    """One entry per disclosure, read or attempt: the organisation that received, read or tried
    to open (a decision's recipient, otherwise the acting organisation), whether it was granted,
    and for nödöppning the reason it stated. Refused sharing decisions are left out: nothing
    reached anyone (a refused nödöppning is in: someone tried)."""
    return [
        {
            "time": r.time.isoformat(),
            "action": r.action,
            "organisation": r.recipient_org if r.action == AuditAction.DECISION else r.actor_org,
            "granted": r.outcome in ("allow", "ok"),
            "source": r.actor_org if r.action == AuditAction.DECISION else None,
            "legal_ground": r.legal_ground,
            "purpose": r.purpose,
            "categories": r.categories_shared,
            "event_id": r.event_id,
            "stated_reason": next(
                (x.removeprefix(REASON_PREFIX) for x in r.reasons if x.startswith(REASON_PREFIX)),
                None,
            ),
        }
        for r in rows
        if r.action != AuditAction.DECISION or r.outcome == "allow"
    ]


def _extract_html(subject: str, rows: list[dict[str, Any]]) -> str:
    e = html.escape
    body = (
        "".join(
            f"<tr><td>{e(r['time'][:19].replace('T', ' '))}</td>"
            f"<td>{e(ACTION_LABELS.get(r['action'], r['action']))}</td>"
            f"<td>{e(r['organisation'] or '')}</td>"
            f"<td>{e(GRANTED_LABELS[r['granted']])}</td>"
            f"<td>{e(r['source'] or '')}</td>"
            f"<td>{e(r['legal_ground'] or '')}</td><td>{e(', '.join(r['categories']))}</td>"
            f"<td>{e(r['stated_reason'] or '')}</td></tr>"
            for r in rows
        )
        or '<tr><td colspan="8">Inga uppgifter / Nothing recorded</td></tr>'
    )
    return f"""<!doctype html><html lang="sv"><head><meta charset="utf-8">
<title>Loggutdrag / Log extract</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:4px 6px;text-align:left;font-size:90%}}
@media print{{button{{display:none}}}}</style></head><body>
<h1>Loggutdrag <small>/ Log extract</small></h1>
<p>Barn / Child: <strong>{e(subject)}</strong></p>
<p>Vem har fått eller läst uppgifter om barnet, när och med vilket lagstöd.<br>
<em>Who received or read information about the child, when, and on which legal ground.</em></p>
<table><thead><tr><th>Tid / Time (UTC)</th><th>Händelse / Action</th>
<th>Organisation</th><th>Utfall / Outcome</th><th>Källa / Source</th>
<th>Lagstöd / Legal ground</th><th>Kategorier / Categories</th>
<th>Angivet skäl / Stated reason</th></tr></thead><tbody>{body}</tbody></table>
<button onclick="window.print()">Skriv ut / Print</button></body></html>"""


@router.get(
    "/v1/audit/subjects/{subject}/extract",
    responses={
        **PROBLEMS,
        200: {
            "description": "The extract: JSON, or with format=html a printable page",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
)
async def extract(
    subject: SubjectPath,
    request: Request,
    caller: Auditor,
    state: StateDep,
    format: Literal["json", "html"] | None = None,
) -> Any:
    """Loggutdrag: who received or read what about the child (JSON, or HTML to print)."""
    pn = subject_of(subject, pointer="/subject")
    pseudonyms = state.keys.pseudonymiser.candidates(pn)
    async with state.sessions() as session:
        rows = list(
            (
                await session.execute(
                    service.search(pseudonyms=pseudonyms).where(
                        AuditRecord.action.in_(EXTRACT_ACTIONS)
                    )
                )
            ).scalars()
        )
    await state.emit_audit(
        record(
            action=AuditAction.ADMIN_AUDIT_EXTRACT,
            outcome="ok",
            actor_org=caller.org,
            actor_client=caller.client_id,
            subject_pseudonym=pseudonyms[0],
        )
    )
    entries = _extract_rows(rows)
    wants_html = format == "html" or (
        format is None and "text/html" in request.headers.get("accept", "")
    )
    if wants_html:
        return HTMLResponse(_extract_html(pn.digits, entries))
    return {"subject": pn.digits, "entries": entries}
