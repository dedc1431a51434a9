"""Search the trail, open a record, verify the chain, export CSV.

Every search, record view, verification and export is itself an audit record attributed to the
auditor (``admin.audit.*``), put in ``audit.v1`` before the page is answered (fail closed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy import Select

from broker.audit import service
from broker.audit.console.auth import csrf_valid, load_session
from broker.audit.console.pages import HEADERS, HERE, Viewer, audit, day, page, to_login
from broker.audit.models import AuditRecord
from broker.audit.service import RECORD_FIELDS
from broker.auth.deps import StateDep
from broker.records import AuditAction
from broker.runtime.state import AppState
from broker.subjects.input import subject_of
from broker.web.errors import Problem

router = APIRouter()
PAGE = 100
EXPORT_BATCH = 2000
OUTCOMES = ("allow", "deny", "ok", "refused")
ACTIONS = tuple(a.value for a in AuditAction)  # the search form's suggestions


@dataclass(frozen=True)
class Filters:
    """The search form: every field optional; dates are whole UTC days, ``to`` inclusive."""

    subject: str = ""
    org: str = ""
    outcome: str = ""
    action: str = ""
    legal_ground: str = ""
    start: str = ""
    end: str = ""

    def query(self, pseudonyms: list[str] | None, after_seq: int = 0) -> Select[AuditRecord]:
        """The search as SQL; raises :class:`Problem` for a date that is not one."""
        start, end = day(self.start, "/from"), day(self.end, "/to")
        return service.search(
            pseudonyms=pseudonyms,
            org=self.org or None,
            start=datetime.combine(start, time(), UTC) if start else None,
            end=datetime.combine(end + timedelta(days=1), time(), UTC) if end else None,
            outcome=self.outcome or None,
            action=self.action or None,
            legal_ground=self.legal_ground or None,
            after_seq=after_seq,
        )

    def pseudonyms(self, state: AppState) -> list[str] | None:
        """The child's pseudonyms; raises :class:`Problem` for a personnummer that is not one."""
        if not self.subject:
            return None
        return state.keys.pseudonymiser.candidates(subject_of(self.subject, pointer="/subject"))

    def params(self) -> dict[str, str]:
        """The non-empty fields as query parameters (for paging and export links)."""
        raw = {
            "subject": self.subject,
            "org": self.org,
            "outcome": self.outcome,
            "action": self.action,
            "legal_ground": self.legal_ground,
            "from": self.start,
            "to": self.end,
        }
        return {k: v for k, v in raw.items() if v}

    def described(self) -> list[str]:
        """The filters for the audit record of the search; the child only as ``subject``
        (its pseudonym is the record's subject), never the personnummer."""
        return [k if k == "subject" else f"{k}={v}" for k, v in self.params().items()]


def _filters(
    subject: Annotated[str, Query(max_length=20)] = "",
    org: Annotated[str, Query(max_length=63)] = "",
    outcome: Annotated[str, Query(pattern="^(|allow|deny|ok|refused)$")] = "",
    action: Annotated[str, Query(max_length=40)] = "",
    legal_ground: Annotated[str, Query(max_length=40)] = "",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Filters:
    return Filters(
        subject=subject.strip(),
        org=org.strip(),
        outcome=outcome,
        action=action.strip(),
        legal_ground=legal_ground.strip(),
        start=start.strip(),
        end=end.strip(),
    )


SearchFilters = Annotated[Filters, Depends(_filters)]


def _grounds(state: AppState) -> list[str]:
    """The legal grounds a publisher may name (the envelope schema's enum), as suggestions."""
    schema = state.contracts.envelope.schema
    if not isinstance(schema, Mapping):
        return []
    return list(schema["properties"]["legalbasis"]["enum"])


@router.get("/console.css")
async def stylesheet() -> FileResponse:
    return FileResponse(HERE / "templates" / "console.css", media_type="text/css")


@router.get("/search")
async def search(
    request: Request,
    state: StateDep,
    user: Viewer,
    filters: SearchFilters,
    run: str = "",
    after: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The search form; with ``run`` set, one page of matching records, oldest first."""
    if user is None:
        return to_login()
    context: dict[str, Any] = {
        "user": user,
        "filters": filters,
        "outcomes": OUTCOMES,
        "actions": ACTIONS,
        "grounds": _grounds(state),
        "rows": None,
    }
    if not run:
        return page(request, "search.html", context)
    try:
        pseudonyms = filters.pseudonyms(state)
        q = filters.query(pseudonyms, after_seq=after).limit(PAGE)
    except Problem as err:
        return page(request, "search.html", {**context, "error": err.detail}, status=422)
    async with state.sessions() as db:
        rows = list((await db.execute(q)).scalars())
    await audit(
        state,
        user,
        AuditAction.ADMIN_AUDIT_SEARCH,
        subject_pseudonym=pseudonyms[0] if pseudonyms else None,
        reasons=filters.described(),
    )
    params = filters.params()
    here = {**params, "run": "1", "after": str(after)} if after else {**params, "run": "1"}
    context["rows"] = rows
    context["back"] = urlencode({"back": urlencode(here)})
    context["export_url"] = "/audit/export.csv?" + urlencode(params)
    if len(rows) == PAGE:
        following = {**params, "run": "1", "after": rows[-1].seq}
        context["next_url"] = "/audit/search?" + urlencode(following)
    return page(request, "search.html", context)


@router.get("/records/{seq}")
async def view_record(
    seq: int,
    request: Request,
    state: StateDep,
    user: Viewer,
    back: Annotated[str, Query(max_length=2000)] = "",
) -> Response:
    """One record with every field, including its hashes and the policy revision; ``back`` is
    the query of the search it was opened from (only ever appended to ``/audit/?``)."""
    if user is None:
        return to_login()
    async with state.sessions() as db:
        rec = await db.get(AuditRecord, seq)
    context = {"user": user, "rec": rec, "seq": seq, "back": back}
    if rec is None:
        return page(request, "record.html", context, status=404)
    await audit(
        state,
        user,
        AuditAction.ADMIN_AUDIT_VIEW,
        subject_pseudonym=rec.subject_pseudonym,
        event_id=rec.event_id,
        reasons=[f"seq={seq}"],
    )
    fields = [(f, getattr(rec, f)) for f in RECORD_FIELDS]
    return page(request, "record.html", {**context, "fields": fields})


@router.post("/verify")
async def verify(
    request: Request, state: StateDep, user: Viewer, csrf: Annotated[str, Form(max_length=100)]
) -> Response:
    """Recompute the whole chain and check every signed checkpoint."""
    if user is None or not csrf_valid(load_session(request), csrf):
        return to_login()
    cutoff = datetime.now(UTC) - timedelta(
        days=round(365.25 * state.settings.audit_retention_years)
    )
    async with state.sessions() as db:
        verdict = await service.verify_chain(db, state.keys.audit_public_keys)
        archivable = await service.archivable_checkpoint(db, cutoff)
    await audit(
        state,
        user,
        AuditAction.ADMIN_AUDIT_VERIFY,
        reasons=[f"ok={verdict.ok}", f"records={verdict.records}"],
    )
    context = {
        "user": user,
        "verdict": verdict,
        "archivable": archivable,
        "cutoff": cutoff,
        "retention_years": state.settings.audit_retention_years,
    }
    return page(request, "verify.html", context)


def _csv_cell(value: Any) -> str:
    """Lists joined with ``;``; a leading ``= + - @`` is quoted so no spreadsheet runs it."""
    text = ";".join(value) if isinstance(value, list) else "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _csv_rows(
    state: AppState, filters: Filters, pseudonyms: list[str] | None
) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RECORD_FIELDS)
    after = 0
    while True:
        async with state.sessions() as db:
            q = filters.query(pseudonyms, after_seq=after).limit(EXPORT_BATCH)
            rows = list((await db.execute(q)).scalars())
        for rec in rows:
            writer.writerow(_csv_cell(v) for v in service.as_dict(rec).values())
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].seq


@router.get("/export.csv")
async def export(request: Request, state: StateDep, user: Viewer, filters: SearchFilters) -> Any:
    """Every record of the current search (all pages) as CSV, one column per field."""
    if user is None:
        return to_login()
    try:
        pseudonyms = filters.pseudonyms(state)
        filters.query(pseudonyms)  # the dates, checked before the first byte is sent
    except Problem as err:
        return Response(err.detail, status_code=422, media_type="text/plain", headers=HEADERS)
    await audit(
        state,
        user,
        AuditAction.ADMIN_AUDIT_EXPORT,
        subject_pseudonym=pseudonyms[0] if pseudonyms else None,
        reasons=filters.described(),
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _csv_rows(state, filters, pseudonyms),
        media_type="text/csv; charset=utf-8",
        headers={
            **HEADERS,
            "Content-Disposition": f'attachment; filename="samsyn-audit-{stamp}.csv"',
        },
    )
