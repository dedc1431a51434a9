"""Issue and verify access tokens (RS256 JWTs, joserfc).

Verification pins the algorithm list, so ``alg: none`` and HS256-with-the-public-key tokens fail
as wrong signatures; ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` are checked with no leeway
beyond a few seconds of clock skew.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
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


class CheckedSignatures:
    """Tokens whose signature a key set has verified, with their claims; the most recently used
    ``size`` of them.

    Whether a signature verifies is a function of the token's bytes and the key set alone, so
    the same token checked again against the same key set gets the same answer. An
    integration sends the same token with every request until it expires, and the RS256 check
    with joserfc's parsing was a tenth of the API's CPU per one-event publish. Nothing that
    depends on time or state is kept: ``verify`` validates ``exp``, ``nbf``, ``iss`` and ``aud``
    at every use, and the caller asks whether the client still exists. A token that fails is
    not kept, and a token is checked again against any other key set."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._claims: OrderedDict[str, tuple[KeySet, dict[str, Any]]] = OrderedDict()

    def claims(self, token: str, keys: KeySet) -> dict[str, Any]:
        """The token's claims once its signature verifies with ``keys`` (a copy: callers may
        not change what is kept); raises as ``jwt.decode`` does."""
        found = self._claims.get(token)
        if found is not None and found[0] is keys:
            self._claims.move_to_end(token)
            return dict(found[1])
        claims = jwt.decode(token, keys, algorithms=ALGORITHMS).claims
        self._claims[token] = (keys, claims)
        self._claims.move_to_end(token)
        while len(self._claims) > self._size:
            self._claims.popitem(last=False)
        return dict(claims)


def verify(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    audience: str,
    org_claim: str = "org",
    checked: CheckedSignatures | None = None,
) -> tuple[dict[str, Any], str]:
    """Return (claims, organisation) or raise :class:`Unauthenticated` saying what was wrong.
    With ``checked``, a signature verified before with the same key set is not verified again
    (the claims are)."""
    try:
        if checked is not None:
            decoded_claims = checked.claims(token, keys)
        else:
            decoded_claims = jwt.decode(token, keys, algorithms=ALGORITHMS).claims
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
        registry.validate(decoded_claims)
    except JoseError as err:
        raise Unauthenticated(f"token rejected: {err.description or err.error}") from err
    org = decoded_claims.get(org_claim)
    if not isinstance(org, str) or not org:
        raise Unauthenticated(f"token rejected: no organisation in claim {org_claim!r}")
    return decoded_claims, org
