"""Errors as problem+json: a database outage is 503 with Retry-After, never a bare 500."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from broker.web.errors import PROBLEM_JSON, TYPE_BASE, install_handlers


class _Gone(Exception):
    """Stands in for a driver error (asyncpg's are not importable without a server)."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


OUTAGES: dict[str, Exception] = {
    # asyncpg raises OSError subclasses when the server refuses or drops the connection
    "refused": ConnectionRefusedError(111, "Connection refused"),
    "reset": ConnectionResetError(104, "Connection reset by peer"),
    "shutting-down": sa_exc.OperationalError("SELECT 1", {}, _Gone("shutting down")),
    "lost-mid-query": sa_exc.InterfaceError("SELECT 1", {}, _Gone("connection is closed")),
    "invalidated": sa_exc.DBAPIError(
        "SELECT 1", {}, _Gone("terminating connection"), connection_invalidated=True
    ),
    "pool-exhausted": sa_exc.TimeoutError("QueuePool limit reached"),
    # what the asyncpg dialect raises while the server stops or starts: a plain DBAPIError
    "server-shutting-down": sa_exc.DBAPIError(
        "SELECT 1", {}, _Gone("the database system is shutting down", "57P03")
    ),
    "connection-failure": sa_exc.DBAPIError("SELECT 1", {}, _Gone("lost", "08006")),
}


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://samsyn") as client:
        return await client.get(path)


def _app() -> FastAPI:
    app = FastAPI()
    install_handlers(app)

    @app.get("/outage/{name}")
    async def outage(name: str) -> None:
        raise OUTAGES[name]

    @app.get("/bug/{name}")
    async def bug(name: str) -> None:
        if name == "integrity":
            raise sa_exc.IntegrityError("INSERT", {}, _Gone("duplicate key", "23505"))
        raise sa_exc.DBAPIError("SELECT", {}, _Gone("division by zero", "22012"))

    return app


@pytest.mark.parametrize("name", sorted(OUTAGES))
async def test_database_outage_is_503_problem_json_with_retry_after(name: str) -> None:
    """Whatever form the outage takes (refused, reset, shutting down, lost, pool exhausted), the
    client gets 503 problem+json with Retry-After and no driver detail, so it retries."""
    r = await _get(f"/outage/{name}")
    assert r.status_code == 503
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["retry-after"].isdigit()
    body = r.json()
    assert body["type"] == TYPE_BASE + "unavailable"
    assert body["status"] == 503
    assert "database" in body["detail"]
    assert str(OUTAGES[name]) not in body["detail"]


@pytest.mark.parametrize("name", ["integrity", "data"])
async def test_a_database_error_that_is_not_an_outage_stays_a_500(name: str) -> None:
    """An integrity or data error is a bug, not an outage: it is not disguised as 503."""
    r = await _get(f"/bug/{name}")
    assert r.status_code == 500


def test_a_cursor_past_any_position_is_invalid_input() -> None:
    """A cursor naming a position beyond the INTEGER columns' range (never given out) is a 422,
    not a comparison PostgreSQL refuses (schemathesis found the 500 on the PostgreSQL leg)."""
    from broker.web.cursors import MAX_SEQ, decode_cursor, encode_cursor
    from broker.web.errors import InvalidInput

    assert decode_cursor(encode_cursor(MAX_SEQ)) == MAX_SEQ
    with pytest.raises(InvalidInput):
        decode_cursor(encode_cursor(55433724026))
