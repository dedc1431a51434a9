"""Bad input gets its 4xx problem+json and leaves Kafka and the database exactly as they were.

In process (tests/kit/inprocess.py): what is written to Kafka is what the app hands its
producer, counted by the in-memory one."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.kit import Org, child
from tests.kit.inprocess import InProcessSamsyn, start_inprocess

TABLES = ("accepted_events", "consents", "relationships", "feed_items")


def snapshot(samsyn: InProcessSamsyn) -> dict[str, int]:
    """Records the app wrote to each Kafka topic and row counts of the tables ingest could
    touch."""
    env = samsyn.env

    async def take() -> dict[str, int]:
        out = samsyn.kafka.counts()
        engine = create_async_engine(env["SAMSYN_DATABASE_URL"])
        async with engine.connect() as conn:
            for table in TABLES:
                query = text(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)
                out[table] = (await conn.execute(query)).scalar_one()
        await engine.dispose()
        return out

    return asyncio.run(take())


@pytest.fixture(scope="module")
def parties(samsyn: InProcessSamsyn) -> tuple[Org, str]:
    skola = samsyn.org("school", "1460")
    barn = child(11)
    skola.relate(barn, "enrolled")
    return skola, barn


def valid(skola: Org, barn: str) -> dict[str, Any]:
    """An event the rules could route (its consent is unknown: it will reach no one)."""
    return skola.envelope(
        barn,
        "concern.raised",
        {"areas": ["trygghet"], "level": 2},
        purpose="early_support",
        basis="consent",
        consent=str(uuid.uuid4()),
    )


CASES: dict[str, tuple[int, Callable[[dict[str, Any]], Any]]] = {
    "unknown type": (422, lambda e: {**e, "type": "se.backabarnet.unknown.v1"}),
    "schema violation": (422, lambda e: {**e, "data": {"areas": ["trygghet"], "level": 9}}),
    "unknown field": (422, lambda e: {**e, "data": {**e["data"], "extra": 1}}),
    "unknown envelope field": (422, lambda e: {**e, "colour": "red"}),
    "bad personnummer": (422, lambda e: {**e, "subject": "201206152388"}),
    "unknown purpose": (422, lambda e: {**e, "purpose": "curiosity"}),
    "unknown ground": (422, lambda e: {**e, "legalbasis": "because"}),
    "consentref missing": (422, lambda e: {k: v for k, v in e.items() if k != "consentref"}),
    "type the ground never carries": (422, lambda e: {**e, "legalbasis": "mandatory_report"}),
    "other source": (403, lambda e: {**e, "source": "org/someone-else"}),
    "missing data": (422, lambda e: {k: v for k, v in e.items() if k != "data"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_envelope_writes_nothing(
    samsyn: InProcessSamsyn, parties: tuple[Org, str], case: str
) -> None:
    """Each malformed event: its 4xx, problem+json naming the field, and nothing written."""
    skola, barn = parties
    status, mutate = CASES[case]
    before = snapshot(samsyn)
    r = skola.call("POST", "/v1/events", json=mutate(valid(skola, barn)))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert snapshot(samsyn) == before


@pytest.mark.parametrize(
    ("case", "raw"),
    [
        ("malformed json", b'{"specversion": "1.0",'),
        ("empty body", b""),
        ("not an object", b"[1, 2, 3]"),
        ("oversize", b'{"pad": "' + b"x" * (70 * 1024) + b'"}'),
    ],
)
def test_unparseable_body_writes_nothing(
    samsyn: InProcessSamsyn, parties: tuple[Org, str], case: str, raw: bytes
) -> None:
    """Malformed, empty, non-object and oversize bodies are 400/422/413 and write nothing."""
    skola, _ = parties
    before = snapshot(samsyn)
    r = skola.call("POST", "/v1/events", content=raw, headers={"Content-Type": "application/json"})
    expected = {"malformed json": 400, "empty body": 400, "not an object": 422, "oversize": 413}[
        case
    ]
    assert r.status_code == expected, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert snapshot(samsyn) == before


def forged(payload: dict[str, Any], header: dict[str, Any]) -> str:
    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc(header)}.{enc(payload)}."


@pytest.mark.parametrize(
    "token",
    [
        None,
        "garbage",
        "a.b.c",
        forged(
            {
                "sub": "x",
                "org": "x",
                "scope": "events:publish",
                "iss": "x",
                "aud": "samsyn",
                "exp": int(time.time()) + 600,
            },
            {"alg": "none"},
        ),
    ],
)
def test_bad_tokens_are_401_and_write_nothing(
    samsyn: InProcessSamsyn, parties: tuple[Org, str], token: str | None
) -> None:
    """No token, garbage and alg:none are 401 problem+json; nothing is written."""
    skola, barn = parties
    before = snapshot(samsyn)
    r = samsyn.call("POST", "/v1/events", token, json=valid(skola, barn))
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert snapshot(samsyn) == before


def server_key(samsyn: InProcessSamsyn) -> RSAKey:
    """The server's own signing key, read from its database (generated there in test mode)."""

    async def load() -> RSAKey:
        engine = create_async_engine(samsyn.env["SAMSYN_DATABASE_URL"])
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT kid, material FROM key_material WHERE purpose = 'jwt'")
                )
            ).one()
        await engine.dispose()
        return RSAKey.import_key(row[1], parameters={"kid": row[0]})

    return asyncio.run(load())


@pytest.mark.parametrize(
    "change",
    [
        "expired",
        "not yet valid",
        "wrong issuer",
        "wrong audience",
        "other key",
        "hs256 with public key",
    ],
)
def test_well_signed_but_wrong_tokens_are_401(
    samsyn: InProcessSamsyn, parties: tuple[Org, str], change: str
) -> None:
    """Tokens signed with the server's real key but expired, not yet valid, for another
    issuer or audience, and tokens from another key or HS256-keyed with the public key: 401."""
    skola, barn = parties
    key = server_key(samsyn)
    now = int(time.time())
    claims = {
        "iss": samsyn.env["SAMSYN_ISSUER"],
        "aud": "samsyn",
        "sub": skola.client_id,
        "org": skola.id,
        "scope": "events:publish",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "t",
    }
    header = {"alg": "RS256", "kid": key.kid}
    if change == "expired":
        claims.update(iat=now - 900, nbf=now - 900, exp=now - 60)
    elif change == "not yet valid":
        claims.update(nbf=now + 600, exp=now + 900)
    elif change == "wrong issuer":
        claims["iss"] = "https://idp.example"
    elif change == "wrong audience":
        claims["aud"] = "another-api"
    elif change == "other key":
        key = RSAKey.generate_key(2048, private=True, parameters={"kid": str(key.kid)})
    if change == "hs256 with public key":

        def enc(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        signing_input = f"{enc({'alg': 'HS256', 'kid': key.kid})}.{enc(claims)}"
        mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256)
        token = signing_input + "." + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")
    else:
        token = jwt.encode(header, claims, key, algorithms=["RS256"])
    before = snapshot(samsyn)
    r = samsyn.call("POST", "/v1/events", token, json=valid(skola, barn))
    assert r.status_code == 401, r.text
    assert snapshot(samsyn) == before


def test_missing_scope_is_403(samsyn: InProcessSamsyn, parties: tuple[Org, str]) -> None:
    """A client without events:publish cannot publish, and nothing is written."""
    skola, barn = parties
    reader = samsyn.org("school", "1460", scopes=["feed:read"])
    before = snapshot(samsyn)
    env = valid(skola, barn)
    env["source"] = f"org/{reader.id}"
    r = reader.call("POST", "/v1/events", json=env)
    assert r.status_code == 403
    assert snapshot(samsyn) == before


def test_removed_client_token_is_401(samsyn: InProcessSamsyn) -> None:
    """A token issued before its client was disabled stops working."""
    org = samsyn.org("school", "1460")
    r = samsyn.call("DELETE", f"/v1/admin/clients/{org.client_id}", samsyn.admin)
    assert r.status_code == 200
    time.sleep(6)  # past the positive cache of active clients
    assert org.call("GET", "/v1/feed").status_code == 401


def test_openapi_describes_every_endpoint(samsyn: InProcessSamsyn) -> None:
    """/openapi.json lists every contract path, each with problem+json error responses."""
    spec = samsyn.http.get(samsyn.url + "/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/oauth/token",
        "/v1/events",
        "/v1/events/{event_id}",
        "/v1/consents",
        "/v1/consents/{consent_id}/withdraw",
        "/v1/relationships",
        "/v1/relationships/{rel_id}/end",
        "/v1/admin/organisations",
        "/v1/admin/clients",
        "/v1/feed",
        "/v1/children/{subject}",
        "/v1/children/{subject}/emergency-access",
        "/v1/audit/records",
        "/v1/audit/verify",
        "/v1/audit/subjects/{subject}/extract",
    ):
        assert path in paths, path
        for op in paths[path].values():
            assert "401" in op["responses"] or path == "/.well-known/jwks.json", path


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, opa_url: str) -> Iterator[InProcessSamsyn]:
    """A Samsyn with tight rate limits, so the tests reach them in a few calls. The buckets
    refill in minutes, not seconds: on a loaded machine a few slow calls (Argon2) must not
    earn a token back before the limit is reached."""
    db = tmp_path_factory.mktemp("rate") / "rate.db"
    server = start_inprocess(
        f"sqlite+aiosqlite:///{db}",
        opa_url=opa_url,
        rate_publish_per_s=0.01,
        rate_publish_burst=3,
        rate_token_per_s=0.01,
        rate_token_burst=4,
    )
    yield server
    server.stop()


def test_token_endpoint_is_rate_limited_per_client(limited: InProcessSamsyn) -> None:
    """Past its burst, /oauth/token for one client id (right or wrong secret) answers 429 with
    Retry-After, while another client is still served."""
    org = limited.org("school", "1460")  # spends one of the client's tokens
    answers = [
        limited.http.post(
            f"{limited.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(org.client_id, "wrong-secret"),
        ).status_code
        for _ in range(4)
    ]
    assert answers == [401, 401, 401, 429]
    refused = limited.http.post(
        f"{limited.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(org.client_id, org.secret),
    )
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert limited.org("school", "1460").token


def test_publish_is_rate_limited_per_client(limited: InProcessSamsyn) -> None:
    """Past its burst a client's publishes get 429 with Retry-After and are not written."""
    skola = limited.org("school", "1460")
    barn = child(9)
    answers = [
        skola.call("POST", "/v1/events", json=valid(skola, barn)).status_code for _ in range(5)
    ]
    assert answers == [202, 202, 202, 429, 429]
    again = skola.call("POST", "/v1/events", json=valid(skola, barn))
    assert again.headers["Retry-After"]


def test_a_batch_costs_one_unit_per_event(limited: InProcessSamsyn) -> None:
    """A batch of four events against a burst of three is 429 as a whole and writes nothing;
    a batch of three fits."""
    skola = limited.org("school", "1460")
    barn = child(9)
    batch = {"Content-Type": "application/cloudevents-batch+json"}
    four = [valid(skola, barn) for _ in range(4)]
    r = skola.call("POST", "/v1/events", headers=batch, content=json.dumps(four))
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"]
    assert skola.call("GET", f"/v1/events/{four[0]['id']}").status_code == 404
    r = skola.call("POST", "/v1/events", headers=batch, content=json.dumps(four[:3]))
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()] == ["accepted"] * 3


@pytest.mark.parametrize("path", ["/v1/relationships", "/v1/consents"])
def test_registry_bodies_are_checked_against_schemas_requests(
    parties: tuple[Org, str], path: str
) -> None:
    """Consent and relationship bodies are validated by the published JSON Schemas in
    schemas/requests/: a Unix time for valid_from (which pydantic alone would read as a date)
    is a 422 naming the field, and nothing is written."""
    skola, barn = parties
    body: dict[str, Any] = {"subject": barn, "valid_from": 1767225600}
    if path == "/v1/relationships":
        body["role"] = "enrolled"
    else:
        body |= {
            "given_by": [{"role": "guardian"}],
            "valid_until": "2027-01-01T00:00:00Z",
            "scope": {
                "from_kinds": ["school"],
                "to_kinds": ["health"],
                "categories": ["attendance"],
                "purposes": ["early_support"],
            },
        }
    r = skola.call("POST", path, json=body)
    assert r.status_code == 422, r.text
    errors = {e["pointer"]: e["detail"] for e in r.json()["errors"]}
    assert "string" in errors["/valid_from"]
