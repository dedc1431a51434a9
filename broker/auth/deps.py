"""FastAPI dependencies: the verified caller, and one guard per scope."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from broker.auth.tokens import Caller, verify
from broker.runtime.state import AppState, get_state
from broker.web.errors import Forbidden, Unauthenticated


async def current_caller(request: Request) -> Caller:
    state = get_state(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an OAuth2 access token as 'Authorization: Bearer <token>'")
    token = token.strip()
    settings = state.settings
    issuer, audience, org_claim, keys = (
        settings.issuer,
        settings.audience,
        "org",
        state.local_keyset,
    )
    if settings.oidc_issuer and state.oidc_keyset is not None:
        try:
            # Unverified, only to pick the key set; verify() then checks it with that set.
            unverified = json.loads(extract_compact(token.encode()).payload)
        except (JoseError, ValueError):
            unverified = {}
        if not isinstance(unverified, dict):
            unverified = {}
        if unverified.get("iss") == settings.oidc_issuer:
            issuer, org_claim, keys = (
                settings.oidc_issuer,
                settings.oidc_org_claim,
                (state.oidc_keyset),
            )
            audience = settings.oidc_audience or settings.audience
    claims, org = verify(
        token,
        keys,
        issuer=issuer,
        audience=audience,
        org_claim=org_claim,
        checked=state.checked_tokens,
    )
    client_id = str(claims["sub"])
    if issuer == settings.issuer and not await state.client_is_active(client_id):
        raise Unauthenticated("token rejected: the client has been removed")
    scopes = frozenset(str(claims.get("scope", "")).split())
    return Caller(client_id=client_id, org=org, scopes=scopes, token_id=str(claims.get("jti")))


def require(scope: str) -> Callable[[Caller], Awaitable[Caller]]:
    async def guard(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if scope not in caller.scopes:
            raise Forbidden(f"this call needs the scope {scope!r}")
        return caller

    guard.__name__ = f"require_{scope.replace(':', '_')}"
    return guard


async def _state(request: Request) -> AppState:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request.
    return get_state(request)


StateDep = Annotated[AppState, Depends(_state)]
Publisher = Annotated[Caller, Depends(require("events:publish"))]
FeedReader = Annotated[Caller, Depends(require("feed:read"))]
RelationshipWriter = Annotated[Caller, Depends(require("relationships:write"))]
ConsentWriter = Annotated[Caller, Depends(require("consents:write"))]
Auditor = Annotated[Caller, Depends(require("audit:read"))]
# The follow-up's published tables (no child in them): for oversight and a project lead.
FollowupReader = Annotated[Caller, Depends(require("followup:read"))]
Admin = Annotated[Caller, Depends(require("admin"))]
AnyCaller = Annotated[Caller, Depends(current_caller)]
