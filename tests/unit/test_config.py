"""Production starts only with real secrets: every key present, none a placeholder from the
example manifests, the random ones long enough. Development and test start without any (their
keys are generated), and an error never quotes a secret."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from broker.config import Settings
from broker.infra.keys import _pem


def _production(**overrides: Any) -> dict[str, Any]:
    """Environment variables of a production deployment with good secrets."""
    env = {
        "SAMSYN_ENV": "production",
        "SAMSYN_JWT_PRIVATE_KEY": _pem(Ed25519PrivateKey.generate()),  # only its text matters
        "SAMSYN_PSEUDONYM_KEYS": json.dumps(
            {"k1": base64.b64encode(secrets.token_bytes(32)).decode()}
        ),
        "SAMSYN_KEK_KEYS": json.dumps({"kek1": base64.b64encode(secrets.token_bytes(32)).decode()}),
        "SAMSYN_AUDIT_SIGNING_KEY": _pem(Ed25519PrivateKey.generate()),
        "SAMSYN_FOLLOWUP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SAMSYN_CONSOLE_SESSION_SECRET": secrets.token_urlsafe(32),
        "SAMSYN_ADMIN_CLIENT_ID": "operator",
        "SAMSYN_ADMIN_CLIENT_SECRET": secrets.token_urlsafe(24),
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_production_with_real_secrets_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings(monkeypatch, _production()).env == "production"


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("SAMSYN_CONSOLE_SESSION_SECRET", "REPLACE-ME", "a placeholder"),
        ("SAMSYN_CONSOLE_SESSION_SECRET", "changethis", "a placeholder"),
        ("SAMSYN_CONSOLE_SESSION_SECRET", "x" * 31, "shorter than 32 characters"),
        ("SAMSYN_ADMIN_CLIENT_SECRET", "hemligt", "shorter than 32 characters"),
        ("SAMSYN_ADMIN_CLIENT_SECRET", "change_me", "a placeholder"),
        ("SAMSYN_JWT_PRIVATE_KEY", "REPLACE-ME", "a placeholder"),
        ("SAMSYN_AUDIT_SIGNING_KEY", "replace-with-the-audit-key", "a placeholder"),
        ("SAMSYN_KAFKA_SASL_PASSWORD", "REPLACE-ME", "a placeholder"),
        ("SAMSYN_CONSOLE_OIDC_CLIENT_SECRET", "password", "a placeholder"),
        ("SAMSYN_PSEUDONYM_KEYS", '{"k1": "REPLACE-ME"}', "a placeholder"),
        ("SAMSYN_KEK_KEYS", '{"kek1": "REPLACE-ME"}', "a placeholder"),
        (
            "SAMSYN_PSEUDONYM_KEYS",
            json.dumps({"k1": base64.b64encode(b"sixteen byte key").decode()}),
            "shorter than 32 bytes",
        ),
    ],
)
def test_production_refuses_a_placeholder_or_a_short_secret(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, why: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _settings(monkeypatch, _production(**{variable: value}))
    message = str(caught.value)
    assert variable in message
    assert why in message
    assert value not in message  # the error names the variable, never its value


@pytest.mark.parametrize(
    "variable",
    [
        "SAMSYN_JWT_PRIVATE_KEY",
        "SAMSYN_PSEUDONYM_KEYS",
        "SAMSYN_KEK_KEYS",
        "SAMSYN_AUDIT_SIGNING_KEY",
        "SAMSYN_FOLLOWUP_KEY",
        "SAMSYN_CONSOLE_SESSION_SECRET",
    ],
)
def test_production_refuses_to_start_without_a_key(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    with pytest.raises(ValidationError, match=f"production needs {variable}"):
        _settings(monkeypatch, _production(**{variable: None}))


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_take_any_secret(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    settings = _settings(
        monkeypatch,
        {
            "SAMSYN_ENV": env,
            "SAMSYN_CONSOLE_SESSION_SECRET": "x",
            "SAMSYN_ADMIN_CLIENT_SECRET": "y",
        },
    )
    assert settings.env == env
