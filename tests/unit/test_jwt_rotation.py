"""Token-signing key rotation without downtime (docs/operations.md "Keys"): extra public keys
in SAMSYN_JWT_PREVIOUS_PUBLIC_KEYS verify tokens and are published in the JWKS, so instances
that sign with the old key and instances that sign with the new one accept each other's tokens
during a rolling update, and tokens issued before the switch stay valid until they expire."""

from __future__ import annotations

import pytest
from joserfc.jwk import KeySet, RSAKey

from broker.auth.tokens import issue, verify
from broker.config import Settings
from broker.infra.keys import verification_keys
from broker.web.errors import Problem

ISSUER, AUDIENCE = "https://samsyn.test", "samsyn"


def signing_key(kid: str) -> tuple[RSAKey, str]:
    """A private signing key under ``kid`` and its public key in PEM."""
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
    return key, key.as_pem(private=False).decode()


def keyset(kid: str, key: RSAKey, extra: dict[str, str]) -> KeySet:
    settings = Settings(jwt_kid=kid, jwt_previous_public_keys=extra)
    return KeySet([*verification_keys(settings, key)])


def token(key: RSAKey) -> str:
    return issue(
        key,
        issuer=ISSUER,
        audience=AUDIENCE,
        client_id="c1",
        org="skola-1",
        scopes=["events:publish"],
        ttl_s=900,
    )


def accepts(keys: KeySet, tok: str) -> bool:
    try:
        verify(tok, keys, issuer=ISSUER, audience=AUDIENCE)
    except Problem:
        return False
    return True


def test_rotation_phases_accept_both_keys_and_publish_both() -> None:
    """Phase 1 (old signs, new published), phase 2 (new signs, old published): in both, tokens
    of either key verify, and the JWKS lists both kids without private parts. Phase 3 (old
    dropped) refuses the old key's tokens."""
    old, old_pem = signing_key("2026-01")
    new, new_pem = signing_key("2026-07")
    phase1 = keyset("2026-01", old, {"2026-07": new_pem})
    phase2 = keyset("2026-07", new, {"2026-01": old_pem})
    phase3 = keyset("2026-07", new, {})
    for keys in (phase1, phase2):
        assert accepts(keys, token(old))
        assert accepts(keys, token(new))
        published = keys.as_dict(private=False)["keys"]
        assert sorted(k["kid"] for k in published) == ["2026-01", "2026-07"]
        assert not [k for k in published if "d" in k]
    assert accepts(phase3, token(new))
    assert not accepts(phase3, token(old))


def test_previous_keys_must_be_public_and_not_reuse_the_signing_kid() -> None:
    key, pem = signing_key("a")
    with pytest.raises(ValueError, match="repeats the signing kid"):
        keyset("a", key, {"a": pem})
    other, _ = signing_key("b")
    with pytest.raises(ValueError, match="must be a public key"):
        keyset("a", key, {"b": other.as_pem(private=True).decode()})
