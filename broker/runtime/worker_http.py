"""The small HTTP server of a worker-only process (``samsyn worker``, e.g. a router pod):
``/healthz``, ``/readyz`` and ``/metrics`` on ``SAMSYN_METRICS_HOST:SAMSYN_METRICS_PORT``, so that
an orchestrator can probe and Prometheus can scrape a process that has no API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.config import Settings
from broker.policy.client import PolicyClient
from broker.runtime.readiness import Check, dependency_checks, readiness
from broker.web import telemetry


def worker_app(
    settings: Settings, engine: AsyncEngine, policy: PolicyClient | None, workers: dict[str, Check]
) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, telemetry=telemetry.OFF)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process and its event loop answer."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Any:
        """Kafka metadata, a database round trip and, where a worker decides (the router), OPA
        with an activated bundle; and each worker's session making progress. 503 names what is
        down (a router then holds its events: fail closed)."""
        return await readiness({**dependency_checks(settings, engine, policy), **workers})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def server(
    settings: Settings, engine: AsyncEngine, policy: PolicyClient | None, workers: dict[str, Check]
) -> uvicorn.Server:
    """The server; run ``await server.serve()``, stop it with ``server.should_exit = True``."""
    assert settings.metrics_port is not None
    config = uvicorn.Config(
        worker_app(settings, engine, policy, workers),
        host=settings.metrics_host,
        port=settings.metrics_port,
        log_level="warning",
        access_log=False,
    )
    return _Server(config)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handling: run_workers owns SIGTERM and SIGINT (it
    stops the workers first, then this server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
