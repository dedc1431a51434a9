"""Unusual access in a period, flagged for a human (broker/audit/followup/flags.py says how)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from broker.audit.console.pages import PeriodDep, Viewer, audit, page, to_login
from broker.audit.followup import flags as measures
from broker.auth.deps import StateDep
from broker.records import AuditAction

router = APIRouter()


@router.get("/flags")
async def show(request: Request, state: StateDep, user: Viewer, period: PeriodDep) -> Response:
    if user is None:
        return to_login()
    async with state.sessions() as db:
        found = await measures.flags(db, period.first, period.last, period.org)
    await audit(state, user, AuditAction.ADMIN_AUDIT_FLAGS, reasons=period.described())
    context = {"user": user, "period": period, "flags": found, "measures": measures}
    return page(request, "flags.html", context)
