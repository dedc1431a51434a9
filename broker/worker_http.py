"""The small HTTP server of a worker-only process (``samsyn worker``, e.g. a router pod):
``/healthz``, ``/readyz`` and ``/metrics`` on ``SAMSYN_METRICS_HOST:SAMSYN_METRICS_PORT``, so that
an orchestrator can probe and Prometheus can scrape a process that has no API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from broker import kafka
from broker.config import Settings
from broker.metrics import DEPENDENCY_UP
from broker.router.policy import PolicyClient


def worker_app(settings: Settings, engine: AsyncEngine, policy: PolicyClient) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process and its event loop answer."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Any:
        """Kafka metadata, OPA with an activated bundle, and a database round trip: what a router
        needs to route. 503 names what is down (a router then holds its events: fail closed)."""

        async def db() -> bool:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True

        checks: dict[str, bool] = {}

        async def probe(name: str, check: Any) -> None:
            try:
                checks[name] = bool(await asyncio.wait_for(check, 3.0))
            except Exception:
                checks[name] = False

        await asyncio.gather(
            probe("kafka", kafka.metadata_ok(settings)),
            probe("opa", policy.healthy()),
            probe("database", db()),
        )
        for name, ok in checks.items():
            DEPENDENCY_UP.labels(name).set(1 if ok else 0)
        down = sorted(k for k, ok in checks.items() if not ok)
        body = {"status": "ready" if not down else "unavailable", "down": down}
        return JSONResponse(body, status_code=503 if down else 200)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def server(settings: Settings, engine: AsyncEngine, policy: PolicyClient) -> uvicorn.Server:
    """The server; run ``await server.serve()``, stop it with ``server.should_exit = True``."""
    assert settings.metrics_port is not None
    config = uvicorn.Config(
        worker_app(settings, engine, policy),
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
