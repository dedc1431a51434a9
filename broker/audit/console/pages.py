"""What every console page shares: templates, security headers, the logged-in viewer, the
page renderer, the audit record of what the auditor did, and the follow-up's period filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from broker.audit.console.auth import (
    ConsoleUser,
    csrf_token,
    current_user,
    load_session,
    save_session,
)
from broker.audit.followup.vocabulary import VERDICTS
from broker.audit.records import record
from broker.records import AuditAction
from broker.runtime.state import AppState
from broker.web.errors import InvalidInput

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["verdicts"] = VERDICTS
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
Viewer = Annotated[ConsoleUser | None, Depends(current_user)]
DEFAULT_DAYS = 30


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """Render a page with the session's CSRF token. The cookie is re-signed only when the token
    is new: re-signing restarts the clock, and a login must end ``console_session_s`` after it."""
    session = load_session(request)
    fresh = "csrf" not in session
    token = csrf_token(session)
    response = templates.TemplateResponse(
        request, name, {"csrf": token, **context}, status_code=status, headers=HEADERS
    )
    if fresh:
        save_session(request, response, session)
    return response


def to_login() -> RedirectResponse:
    return RedirectResponse("/audit/login", status_code=303, headers=HEADERS)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=HEADERS)


async def audit(
    state: AppState,
    user: ConsoleUser | None,
    action: AuditAction,
    *,
    outcome: str = "ok",
    actor: str | None = None,
    **fields: Any,
) -> None:
    """Put what the auditor did in ``audit.v1`` before the page is answered (fail closed)."""
    await state.emit_audit(
        record(
            action=action,
            outcome=outcome,
            actor_org=user.org if user else None,
            actor_client=user.actor_client if user else actor,
            **fields,
        )
    )


def day(value: str, pointer: str) -> date | None:
    """A form's date (YYYY-MM-DD; empty is none)."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise InvalidInput(f"{pointer}: {value!r} is not a date (YYYY-MM-DD)") from err


@dataclass(frozen=True)
class Period:
    """The follow-up pages' filter: whole UTC days ``first``..``last`` and one organisation."""

    first: date
    last: date
    org: str = ""

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def params(self) -> dict[str, str]:
        out = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        return {**out, "org": self.org} if self.org else out

    def described(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.params().items()]


def period(
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
    org: Annotated[str, Query(max_length=63)] = "",
) -> Period:
    """Default: the last 30 days up to today. Raises :class:`InvalidInput` (problem+json, 422)
    for a date that is not one, a period that ends before it starts, or one over a year."""
    last = day(end.strip(), "/to") or datetime.now(UTC).date()
    first = day(start.strip(), "/from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("/from: the period starts after it ends")
    if (last - first).days > 366:
        raise InvalidInput("/from: a period is at most a year")
    return Period(first, last, org.strip())


PeriodDep = Annotated[Period, Depends(period)]
