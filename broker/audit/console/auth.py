"""Who uses the console: a signed session cookie, CSRF tokens, and the OIDC login (code + PKCE).

The session is one cookie signed with itsdangerous: HttpOnly, SameSite=Lax (the OIDC callback
is a cross-site top-level GET that must carry it), Secure over https, path ``/audit``. It holds a
CSRF token from the first page on, so the login form is protected too; after a login, a fresh
token and who is logged in. The signature carries the time of issue, so a login lasts
``console_session_s`` at most. A local auditor's account is looked up on every request, so
disabling it ends its sessions.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc.jwk import KeySet

from broker.audit.console.service import active_auditor
from broker.auth.tokens import verify
from broker.config import Settings
from broker.runtime.state import AppState, get_state
from broker.web.errors import Unauthenticated

COOKIE = "samsyn_console"
PATH = "/audit"
SALT = "samsyn-audit-console-session"


@dataclass(frozen=True)
class ConsoleUser:
    """A logged-in auditor: a local account name or an OIDC subject, and the organisation."""

    name: str
    org: str
    via: str  # "local" or "oidc"

    @property
    def actor_client(self) -> str:
        """How audit records name this person (``actor_client`` holds at most 64 characters)."""
        return f"{self.via}:{self.name}"[:64]


def _serializer(state: AppState) -> URLSafeTimedSerializer:
    configured = state.settings.console_session_secret
    if configured is not None:
        secret = configured.get_secret_value().encode()
    else:
        # Development and test only (production requires the setting): derived from the
        # token-signing key, so every process of the deployment accepts the same cookies.
        secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SALT.encode()).derive(
            state.keys.jwt.as_pem(private=True)
        )
    return URLSafeTimedSerializer(secret, salt=SALT)


def load_session(request: Request) -> dict[str, Any]:
    """The request's session, or an empty one if the cookie is missing, forged or expired."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    state = get_state(request)
    try:
        data = _serializer(state).loads(raw, max_age=state.settings.console_session_s)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def save_session(request: Request, response: Response, session: dict[str, Any]) -> None:
    state = get_state(request)
    response.set_cookie(
        COOKIE,
        _serializer(state).dumps(session),
        max_age=state.settings.console_session_s,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax")


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use (the caller saves the session)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_valid(session: dict[str, Any], submitted: str) -> bool:
    expected = session.get("csrf")
    return isinstance(expected, str) and hmac.compare_digest(expected, submitted)


def logged_in(user: ConsoleUser) -> dict[str, Any]:
    """A new session for ``user``, with a new CSRF token (no token survives a login)."""
    return {
        "csrf": secrets.token_urlsafe(32),
        "user": {"name": user.name, "org": user.org, "via": user.via},
    }


async def current_user(request: Request) -> ConsoleUser | None:
    """The logged-in auditor, or None; a local account must still exist and be enabled."""
    user = load_session(request).get("user")
    if not isinstance(user, dict):
        return None
    who = ConsoleUser(name=str(user["name"]), org=str(user["org"]), via=str(user["via"]))
    if who.via == "local":
        async with get_state(request).sessions() as session:
            account = await active_auditor(session, who.name)
        if account is None or account.org_id != who.org:
            return None
    return who


# OpenID Connect: authorization code flow with PKCE (S256), a state and a nonce.


async def oidc_metadata(settings: Settings) -> dict[str, Any]:
    """The IdP's discovery document (``.well-known/openid-configuration``)."""
    assert settings.console_oidc_discovery_url
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(settings.console_oidc_discovery_url)
        resp.raise_for_status()
        metadata: dict[str, Any] = resp.json()
        return metadata


def _oidc_client(settings: Settings, redirect_uri: str) -> Any:
    assert settings.console_oidc_client_secret
    return AsyncOAuth2Client(
        client_id=settings.console_oidc_client_id,
        client_secret=settings.console_oidc_client_secret.get_secret_value(),
        scope=settings.console_oidc_scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=10,
    )


async def authorization_redirect(
    settings: Settings, metadata: dict[str, Any], redirect_uri: str
) -> tuple[str, dict[str, str]]:
    """The IdP URL to send the browser to, and what the callback must find in the session."""
    verifier, nonce = generate_token(64), generate_token(32)
    async with _oidc_client(settings, redirect_uri) as client:
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
    return str(url), {"state": str(state), "verifier": verifier, "nonce": nonce}


async def oidc_identity(
    settings: Settings,
    metadata: dict[str, Any],
    redirect_uri: str,
    pending: dict[str, str],
    code: str,
) -> tuple[str, str]:
    """Redeem the code (with the PKCE verifier) and check the ID token: (subject, organisation).

    The ID token must be signed by a key of the IdP's JWKS, name the IdP as issuer and this
    client as audience, be unexpired, carry the nonce of this login and the organisation claim.
    """
    async with _oidc_client(settings, redirect_uri) as client:
        token = await client.fetch_token(
            metadata["token_endpoint"],
            grant_type="authorization_code",
            code=code,
            code_verifier=pending["verifier"],
        )
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.get(metadata["jwks_uri"])
        resp.raise_for_status()
        keys = KeySet.import_key_set(resp.json())
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise Unauthenticated("the IdP returned no ID token")
    claims, org = verify(
        id_token,
        keys,
        issuer=str(metadata["issuer"]),
        audience=str(settings.console_oidc_client_id),
        org_claim=settings.console_oidc_org_claim,
    )
    if not hmac.compare_digest(str(claims.get("nonce", "")), pending["nonce"]):
        raise Unauthenticated("the ID token's nonce is not this login's")
    return str(claims["sub"]), org
