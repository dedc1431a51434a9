"""Issue and verify access tokens (RS256 JWTs, joserfc).

Verification pins the algorithm list, so ``alg: none`` and HS256-with-the-public-key tokens fail
as wrong signatures; ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` are checked with no leeway
beyond a few seconds of clock skew.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from broker.web.errors import Unauthenticated

ALGORITHMS = ["RS256"]
SCOPES = frozenset(
    {
        "events:publish",
        "feed:read",
        "relationships:write",
        "consents:write",
        "audit:read",
        "followup:read",
        "admin",
    }
)
LEEWAY_S = 5


@dataclass(frozen=True)
class Caller:
    """Who is calling: the API client, its organisation and the scopes its token carries."""

    client_id: str
    org: str
    scopes: frozenset[str]
    token_id: str


def issue(
    key: RSAKey,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    org: str,
    scopes: list[str],
    ttl_s: int,
) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": client_id,
        "org": org,
        "scope": " ".join(sorted(scopes)),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": str(uuid.uuid4()),
    }
    header = {"alg": "RS256", "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, key, algorithms=ALGORITHMS)


def verify(
    token: str, keys: KeySet, *, issuer: str, audience: str, org_claim: str = "org"
) -> tuple[dict[str, Any], str]:
    """Return (claims, organisation) or raise :class:`Unauthenticated` saying what was wrong."""
    try:
        decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
    except JoseError as err:
        raise Unauthenticated(f"token rejected: {err.description or err.error}") from err
    except (ValueError, KeyError, TypeError) as err:
        raise Unauthenticated("token rejected: not a well-formed JWT") from err
    registry = JWTClaimsRegistry(
        leeway=LEEWAY_S,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError as err:
        raise Unauthenticated(f"token rejected: {err.description or err.error}") from err
    org = decoded.claims.get(org_claim)
    if not isinstance(org, str) or not org:
        raise Unauthenticated(f"token rejected: no organisation in claim {org_claim!r}")
    return decoded.claims, org
