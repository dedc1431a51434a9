"""The console's first page: the overview of a period (default the last 30 days)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from broker.audit.console.charts import bars, columns
from broker.audit.console.pages import PeriodDep, Viewer, audit, page, to_login
from broker.audit.followup.overview import SERIES, chain_state, overview
from broker.auth.deps import StateDep
from broker.records import AuditAction

router = APIRouter()


@router.get("/")
async def show(request: Request, state: StateDep, user: Viewer, period: PeriodDep) -> Response:
    if user is None:
        return to_login()
    now = datetime.now(UTC)
    async with state.sessions() as db:
        seen = await overview(
            db,
            period.first,
            period.last,
            period.org,
            now=now,
            overdue_days=state.settings.audit_review_overdue_days,
        )
        chain = await chain_state(db, state.keys.audit_public_keys)
    await audit(state, user, AuditAction.ADMIN_AUDIT_OVERVIEW, reasons=period.described())
    per_day = {d.strftime("%m-%d"): v for d, v in seen.per_day.items()}
    context = {
        "user": user,
        "period": period,
        "seen": seen,
        "chain": chain,
        "checkpoint_age": chain.checkpoint_age_s(now),
        "by_day": columns(per_day, SERIES, label_every=max(1, len(per_day) // 15)),
        "by_org": bars(seen.per_org, SERIES),
        "overdue_days": state.settings.audit_review_overdue_days,
    }
    return page(request, "overview.html", context)
