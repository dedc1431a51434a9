"""Access-token verification refuses every classic JWT attack with 401, saying why."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from broker.auth.tokens import CheckedSignatures, issue, verify
from broker.web.errors import Unauthenticated

KEY = RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"})
KEYS = KeySet([KEY])
ISS, AUD = "https://samsyn.test", "samsyn"


def b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISS,
        "aud": AUD,
        "sub": "c1",
        "org": "skola",
        "scope": "feed:read",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "j",
    }
    base.update(over)
    return base


def signed(c: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "kid": "k1"}, c, KEY, algorithms=["RS256"])


def test_issued_token_verifies() -> None:
    """A token Samsyn issued verifies and names the client's organisation."""
    token = issue(
        KEY, issuer=ISS, audience=AUD, client_id="c1", org="skola", scopes=["feed:read"], ttl_s=60
    )
    got, org = verify(token, KEYS, issuer=ISS, audience=AUD)
    assert org == "skola"
    assert got["scope"] == "feed:read"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + ".",
    ],
)
def test_malformed_and_alg_none_are_refused(token: str) -> None:
    """Garbage and unsigned (alg: none) tokens are 401."""
    with pytest.raises(Unauthenticated):
        verify(token, KEYS, issuer=ISS, audience=AUD)


def test_hs256_signed_with_the_public_key_is_refused() -> None:
    """The algorithm-confusion attack (HS256 keyed with the RSA public key) is 401."""
    # Built by hand: joserfc itself refuses to use a public key as an HMAC secret.
    signing_input = f"{b64({'alg': 'HS256', 'kid': 'k1'})}.{b64(claims())}"
    mac = hmac.new(KEY.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    with pytest.raises(Unauthenticated):
        verify(token, KEYS, issuer=ISS, audience=AUD)


@pytest.mark.parametrize(
    "over",
    [
        {"exp": int(time.time()) - 60},
        {"nbf": int(time.time()) + 600},
        {"iss": "https://evil.example"},
        {"aud": "someone-else"},
    ],
)
def test_expired_future_wrong_issuer_or_audience_are_refused(over: dict[str, Any]) -> None:
    """Expired, not yet valid, wrong issuer and wrong audience are each 401."""
    with pytest.raises(Unauthenticated):
        verify(signed(claims(**over)), KEYS, issuer=ISS, audience=AUD)


def test_tampered_payload_is_refused() -> None:
    """Changing the organisation in a signed token breaks its signature."""
    head, _, sig = signed(claims()).split(".")
    forged = f"{head}.{b64(claims(org='annan'))}.{sig}"
    with pytest.raises(Unauthenticated):
        verify(forged, KEYS, issuer=ISS, audience=AUD)


def test_other_key_is_refused() -> None:
    """A well-formed token from a key Samsyn does not publish is 401."""
    other = RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"})
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims(), other, algorithms=["RS256"])
    with pytest.raises(Unauthenticated):
        verify(token, KEYS, issuer=ISS, audience=AUD)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature joserfc was asked to verify, in order."""
    seen: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)  # the module broker.auth.tokens calls
    return seen


def test_a_checked_signature_is_not_verified_again(decodes: list[str]) -> None:
    """The same token against the same key set is verified once; its claims come back whole,
    and changing them does not change what the next use gets."""
    checked = CheckedSignatures()
    token = signed(claims())
    first, _ = verify(token, KEYS, issuer=ISS, audience=AUD, checked=checked)
    first["org"] = "annan"
    second, org = verify(token, KEYS, issuer=ISS, audience=AUD, checked=checked)
    assert decodes == [token]
    assert org == "skola"
    assert second["scope"] == "feed:read"


def test_a_checked_token_is_still_refused_once_it_expires(
    decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the signature is remembered: exp is validated at every use."""
    checked = CheckedSignatures()
    token = signed(claims(exp=int(time.time()) + 60))
    verify(token, KEYS, issuer=ISS, audience=AUD, checked=checked)
    later = int(time.time()) + 600
    monkeypatch.setattr("joserfc._rfc7519.claims._generate_now", lambda: later)
    with pytest.raises(Unauthenticated, match="expired"):
        verify(token, KEYS, issuer=ISS, audience=AUD, checked=checked)
    assert decodes == [token]


def test_a_checked_token_is_verified_again_with_another_key_set(decodes: list[str]) -> None:
    """A signature verified with one key set says nothing about another: the token is checked
    against it, and a set without its key refuses it."""
    checked = CheckedSignatures()
    token = signed(claims())
    verify(token, KEYS, issuer=ISS, audience=AUD, checked=checked)
    other = KeySet([RSAKey.generate_key(2048, private=True, parameters={"kid": "k1"})])
    with pytest.raises(Unauthenticated):
        verify(token, other, issuer=ISS, audience=AUD, checked=checked)
    assert decodes == [token, token]


def test_a_refused_token_is_checked_every_time(decodes: list[str]) -> None:
    """Failures are not remembered, and a forged token is not taken for the signed one it was
    made from."""
    checked = CheckedSignatures()
    real = signed(claims())
    verify(real, KEYS, issuer=ISS, audience=AUD, checked=checked)
    head, _, sig = real.split(".")
    forged = f"{head}.{b64(claims(org='annan'))}.{sig}"
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            verify(forged, KEYS, issuer=ISS, audience=AUD, checked=checked)
    assert decodes == [real, forged, forged]


def test_only_the_most_recently_used_tokens_are_kept(decodes: list[str]) -> None:
    """The memory is bounded: past its size, the least recently used token is checked again."""
    checked = CheckedSignatures(size=2)
    a, b, c = (signed(claims(jti=j)) for j in "abc")
    for token in (a, b, a, c, a, b):
        verify(token, KEYS, issuer=ISS, audience=AUD, checked=checked)
    assert decodes == [a, b, c, b]
