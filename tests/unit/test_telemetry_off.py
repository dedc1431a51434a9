"""FastAPI's own OpenTelemetry instrumentation stays off in Samsyn's apps even where the
environment has set up providers (a platform's auto-instrumentation): request paths carry event,
child and consent ids, and no collector of someone else's choosing is to see them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import _logs, metrics, trace
from sqlalchemy.ext.asyncio import create_async_engine

from broker.app import create_app
from broker.config import Settings
from broker.runtime.worker_http import worker_app


class _Asked:
    """A provider that the environment configured: any use of it is noted and refused."""

    def __init__(self, asked: list[str]) -> None:
        self.asked = asked

    def __getattr__(self, name: str) -> Any:
        self.asked.append(name)
        raise AssertionError(f"FastAPI asked a telemetry provider for {name}")


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    noted: list[str] = []
    provider = _Asked(noted)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: provider)
    monkeypatch.setattr(_logs, "get_logger_provider", lambda: provider)
    return noted


def _apps() -> list[FastAPI]:
    settings = Settings(env="test")
    engine = create_async_engine("sqlite+aiosqlite://")
    return [create_app(settings), worker_app(settings, engine, None, {})]


async def test_no_request_reaches_a_configured_provider(asked: list[str]) -> None:
    for app in _apps():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://samsyn") as client:
            assert (await client.get("/healthz")).status_code == 200
    assert asked == []
