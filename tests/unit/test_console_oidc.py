"""The console's OIDC login starts with a correct authorization-code + PKCE redirect."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from broker.audit.console.auth import authorization_redirect
from broker.config import Settings

SETTINGS = Settings(
    console_oidc_discovery_url="https://idp.example/.well-known/openid-configuration",
    console_oidc_client_id="samsyn-console",
    console_oidc_client_secret=SecretStr("not-in-the-url"),
)
METADATA = {"authorization_endpoint": "https://idp.example/oauth2/authorize"}
CALLBACK = "https://samsyn.example/audit/login/oidc/callback"


async def test_redirect_carries_pkce_s256_state_and_nonce() -> None:
    """The browser is sent to the IdP's authorization endpoint with response_type=code, this
    client and callback, the OpenID scope, and an S256 challenge of the verifier kept for the
    callback; state and nonce are the ones the session keeps; the client secret is not sent."""
    url, pending = await authorization_redirect(SETTINGS, METADATA, CALLBACK)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == METADATA["authorization_endpoint"]
    query = {k: v for k, (v,) in parse_qs(parts.query, strict_parsing=True).items()}
    verifier = pending["verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert query == {
        "response_type": "code",
        "client_id": "samsyn-console",
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": pending["state"],
        "nonce": pending["nonce"],
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    assert 43 <= len(verifier) <= 128
    assert "not-in-the-url" not in url


async def test_every_login_gets_fresh_secrets() -> None:
    """Two logins never share a state, nonce or verifier."""
    _, first = await authorization_redirect(SETTINGS, METADATA, CALLBACK)
    _, second = await authorization_redirect(SETTINGS, METADATA, CALLBACK)
    assert all(first[k] != second[k] for k in ("state", "nonce", "verifier"))
    assert len(first["state"]) >= 20
    assert len(first["nonce"]) >= 20
