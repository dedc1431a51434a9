"""Logging in (local account or OpenID Connect) and out; each login, and each refused one,
is an audit record."""

from __future__ import annotations

import hmac
from typing import Annotated

import httpx
import structlog
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from broker.audit.console.auth import (
    ConsoleUser,
    authorization_redirect,
    clear_session,
    csrf_valid,
    load_session,
    logged_in,
    oidc_identity,
    oidc_metadata,
    save_session,
)
from broker.audit.console.pages import HEADERS, audit, page, to_login
from broker.audit.console.service import authenticate
from broker.auth.deps import StateDep
from broker.records import AuditAction
from broker.registry.models import Organisation
from broker.web.errors import Problem

log = structlog.get_logger("samsyn.console")
router = APIRouter()


@router.get("/login")
async def loginpage(request: Request, state: StateDep) -> Response:
    return page(request, "login.html", {"oidc": state.settings.console_oidc_enabled})


@router.post("/login")
async def login(
    request: Request,
    state: StateDep,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)],
) -> Response:
    session = load_session(request)
    if not csrf_valid(session, csrf):
        return page(
            request,
            "login.html",
            {"oidc": state.settings.console_oidc_enabled, "error": "csrf"},
            status=403,
        )
    async with state.sessions() as db:
        account = await authenticate(db, name, password)
    if account is None:
        await audit(
            state, None, AuditAction.ADMIN_AUDIT_LOGIN, outcome="refused", actor=f"local:{name}"
        )
        return page(
            request,
            "login.html",
            {"oidc": state.settings.console_oidc_enabled, "error": "credentials"},
            status=401,
        )
    user = ConsoleUser(name=account.name, org=account.org_id, via="local")
    await audit(state, user, AuditAction.ADMIN_AUDIT_LOGIN)
    response = RedirectResponse("/audit/", status_code=303, headers=HEADERS)
    save_session(request, response, logged_in(user))
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=100)]) -> Response:
    response = to_login()
    if csrf_valid(load_session(request), csrf):
        clear_session(response)
    return response


def _callback_url(request: Request) -> str:
    return str(request.url_for("oidc_callback"))


@router.get("/login/oidc")
async def oidc_start(request: Request, state: StateDep) -> Response:
    if not state.settings.console_oidc_enabled:
        return to_login()
    metadata = await oidc_metadata(state.settings)
    url, pending = await authorization_redirect(state.settings, metadata, _callback_url(request))
    response = RedirectResponse(url, status_code=303, headers=HEADERS)
    session = load_session(request)
    session["oidc"] = pending
    save_session(request, response, session)
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
async def oidc_callback(
    request: Request,
    state: StateDep,
    code: Annotated[str, Query(max_length=2000)] = "",
    oauth_state: Annotated[str, Query(alias="state", max_length=200)] = "",
) -> Response:
    pending = load_session(request).get("oidc")
    failed = {"oidc": state.settings.console_oidc_enabled, "error": "oidc"}
    if not (
        state.settings.console_oidc_enabled
        and isinstance(pending, dict)
        and code
        and hmac.compare_digest(str(pending.get("state", "")), oauth_state)
    ):
        return page(request, "login.html", failed, status=401)
    try:
        metadata = await oidc_metadata(state.settings)
        subject, org = await oidc_identity(
            state.settings, metadata, _callback_url(request), pending, code
        )
    except (Problem, httpx.HTTPError, KeyError, ValueError) as err:
        log.warning("oidc login failed", error=f"{type(err).__name__}: {err}")
        await audit(state, None, AuditAction.ADMIN_AUDIT_LOGIN, outcome="refused", actor="oidc")
        return page(request, "login.html", failed, status=401)
    async with state.sessions() as db:
        organisation = await db.get(Organisation, org)
    user = ConsoleUser(name=subject, org=org, via="oidc")
    if organisation is None or organisation.kind != "oversight":
        await audit(
            state, user, AuditAction.ADMIN_AUDIT_LOGIN, outcome="refused", reasons=["not oversight"]
        )
        return page(request, "login.html", failed, status=403)
    await audit(state, user, AuditAction.ADMIN_AUDIT_LOGIN)
    response = RedirectResponse("/audit/", status_code=303, headers=HEADERS)
    save_session(request, response, logged_in(user))
    return response
