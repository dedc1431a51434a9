"""A printable report of the period's follow-up (what was checked, by whom, verdicts, open
items, flags), for the oversight body's minutes."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from broker.audit.console.pages import PeriodDep, Viewer, audit, page, to_login
from broker.audit.followup.queue import overdue_before
from broker.audit.followup.report import gather
from broker.auth.deps import StateDep
from broker.records import AuditAction

router = APIRouter()


@router.get("/report")
async def show(request: Request, state: StateDep, user: Viewer, period: PeriodDep) -> Response:
    if user is None:
        return to_login()
    now = datetime.now(UTC)
    days = state.settings.audit_review_overdue_days
    made = await gather(
        state.sessions,
        period.first,
        period.last,
        period.org,
        now=now,
        overdue_days=days,
        public_keys=state.keys.audit_public_keys,
    )
    await audit(state, user, AuditAction.ADMIN_AUDIT_REPORT, reasons=period.described())
    context = {
        "user": user,
        "period": period,
        "seen": made.seen,
        "done": made.done,
        "flags": made.flags,
        "chain": made.chain,
        "now": now,
        "overdue_before": overdue_before(now, days),
        "overdue_days": days,
    }
    return page(request, "report.html", context)
