"""Every answer carries an ``X-Request-Id`` (the caller's when it is a plain token), and the
log lines of a request name it, as they name the OPA decision the request was given."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from broker.app import create_app
from broker.config import Settings
from broker.policy.client import PolicyClient
from broker.web.request_id import HEADER, RequestId, request_id


async def _bound(request: Request) -> JSONResponse:
    return JSONResponse(structlog.contextvars.get_contextvars())


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://samsyn")


async def test_the_app_echoes_the_callers_request_id() -> None:
    async with _client(create_app(Settings())) as client:
        given = await client.get("/healthz", headers={HEADER: "caller-42.a:b"})
        made = await client.get("/healthz")
    assert given.headers[HEADER] == "caller-42.a:b"
    assert len(made.headers[HEADER]) == 32
    assert made.headers[HEADER] != given.headers[HEADER]


@pytest.mark.parametrize("given", ["two\nlines", "<script>", "x" * 129, ""])
def test_an_id_that_is_not_a_plain_token_is_replaced(given: str) -> None:
    scope = {"type": "http", "headers": [(b"x-request-id", given.encode())]}
    assert request_id(scope) != given
    assert len(request_id(scope)) == 32


async def test_the_request_id_is_bound_while_the_request_is_handled() -> None:
    app = RequestId(Starlette(routes=[Route("/", _bound)]))
    async with _client(app) as client:
        answer = await client.get("/", headers={HEADER: "r-1"})
    assert answer.json() == {"request_id": "r-1"}
    assert answer.headers[HEADER] == "r-1"
    assert "request_id" not in structlog.contextvars.get_contextvars()  # unbound afterwards


async def test_a_decision_binds_its_opa_decision_id(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = PolicyClient("http://127.0.0.1:1", 1.0)

    async def answer(*_: Any, **__: Any) -> dict[str, Any]:
        return {
            "result": {"table": [], "pairs": {}},
            "decision_id": "d-7",
            "provenance": {"revision": "r"},
        }

    monkeypatch.setattr(policy._client, "query_rule", answer)
    try:
        decided = await policy.decide({"events": []})
        assert structlog.contextvars.get_contextvars()["opa_decision_id"] == "d-7"
    finally:
        structlog.contextvars.unbind_contextvars("opa_decision_id")
    assert decided.decision_id == "d-7"
