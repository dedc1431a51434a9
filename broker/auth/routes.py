"""``POST /oauth/token`` (client credentials) and ``GET /.well-known/jwks.json``.

The token endpoint answers errors as problem+json that also carry RFC 6749's ``error`` code, so
both OAuth2 client libraries and the rest of the API's error handling understand them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from broker.auth.deps import StateDep
from broker.auth.tokens import issue
from broker.registry.models import ApiClient
from broker.registry.secrets import secret_matches
from broker.web.errors import PROBLEM_JSON, TYPE_BASE
from broker.web.openapi import PROBLEMS

router = APIRouter(tags=["auth"])


def _oauth_error(status: int, error: str, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="samsyn"'} if status == 401 else None
    return JSONResponse(
        {
            "type": TYPE_BASE + "oauth-" + error.replace("_", "-"),
            "title": error,
            "status": status,
            "detail": detail,
            "error": error,
            "error_description": detail,
        },
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = raw.partition(":")
    return (unquote(client_id), unquote(secret)) if sep else None


@router.post(
    "/oauth/token",
    responses=PROBLEMS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "scope": {"type": "string"},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def token(request: Request, state: StateDep) -> Any:
    """OAuth2 client credentials (``client_secret_basic`` or ``client_secret_post``)."""
    try:
        form = await request.form()
    except Exception:  # a body that is not a form at all
        return _oauth_error(400, "invalid_request", "send application/x-www-form-urlencoded")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    creds = _basic_credentials(request.headers.get("authorization", ""))
    if creds is None and "client_id" in fields:
        creds = (fields["client_id"], fields.get("client_secret", ""))
    if creds is None:
        return _oauth_error(
            401, "invalid_client", "authenticate with client_secret_basic or client_secret_post"
        )
    if fields.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials is supported")
    # Limited per claimed client id, before the secret is checked: guessing is throttled too.
    state.token_limiter.take(creds[0])
    async with state.sessions() as session:
        client = await session.get(ApiClient, creds[0])
    # Argon2 is deliberately slow: verify off the event loop.
    if (
        client is None
        or client.disabled_at is not None
        or not await asyncio.to_thread(secret_matches, client.secret_hash, creds[1])
    ):
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
    requested = fields.get("scope", "").split()
    if requested and not set(requested) <= set(client.scopes):
        return _oauth_error(
            400, "invalid_scope", f"this client may ask for: {' '.join(client.scopes)}"
        )
    scopes = requested or list(client.scopes)
    settings = state.settings
    access_token = issue(
        state.keys.jwt,
        issuer=settings.issuer,
        audience=settings.audience,
        client_id=client.client_id,
        org=client.org_id,
        scopes=scopes,
        ttl_s=settings.token_ttl_s,
    )
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": settings.token_ttl_s,
            "scope": " ".join(sorted(scopes)),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get("/.well-known/jwks.json")
async def jwks(state: StateDep) -> Any:
    """The public keys that sign Samsyn's access tokens."""
    return state.local_keyset.as_dict(private=False)
