"""The FastAPI application: one lifespan owns the database engine, the Kafka producer, the OPA
client and the background workers this process runs (router, materializer, sealer, webhooks)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from fastapi.responses import Response
from joserfc.jwk import KeySet
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.audit.console.routes import router as console_router
from broker.audit.routes import router as audit_router
from broker.auth.deps import StateDep
from broker.auth.routes import router as auth_router
from broker.config import Settings, get_settings
from broker.contracts import Contracts
from broker.followup.routes import router as followup_router
from broker.infra.db import make_engine, make_sessionmaker
from broker.infra.kafka_writer import KafkaWriter
from broker.infra.keys import load_keys, subject_keys_of, verification_keys
from broker.ingest.routes import router as ingest_router
from broker.ingest.service import grouped_publishes
from broker.policy.client import PolicyClient
from broker.privacy.keylog import KafkaKeyLog, KeyLogReader
from broker.privacy.routes import router as privacy_router
from broker.registry.bootstrap import ensure_admin_client
from broker.registry.routes import router as registry_router
from broker.runtime.logging import configure_logging, dump_tasks_on_sigusr1
from broker.runtime.metrics import HttpMetrics
from broker.runtime.readiness import dependency_checks, keys_check, readiness, worker_checks
from broker.runtime.state import AppState
from broker.runtime.workers import build_workers, start_after_key_import, stop_workers
from broker.web import telemetry
from broker.web.docs import install_docs
from broker.web.errors import install_handlers
from broker.web.head import HeadAsGet
from broker.web.openapi import PROBLEMS, install_openapi
from broker.web.request_id import RequestId
from consumers.children.routes import router as children_router
from consumers.feed.routes import router as feed_router
from consumers.webhooks.routes import router as webhook_router

log = structlog.get_logger("samsyn")


async def _oidc_keyset(settings: Settings) -> KeySet | None:
    if not (settings.oidc_issuer and settings.oidc_jwks_url):
        return None
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(settings.oidc_jwks_url)
        resp.raise_for_status()
        return KeySet.import_key_set(resp.json())


def create_app(
    settings: Settings | None = None,
    *,
    kafka_writer_of: Callable[[Settings], KafkaWriter] = KafkaWriter,
    read_keys: KeyLogReader | None = None,
) -> FastAPI:
    """The app on ``settings``; ``kafka_writer_of`` builds its Kafka producer and ``read_keys``
    reads the key log at start (Kafka's by default; the in-process test layer gives both an
    in-memory Kafka, tests/kit/fake_kafka.py)."""
    settings = settings or get_settings()
    contracts = Contracts()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging()
        dump_tasks_on_sigusr1()
        # Each resource is pushed as soon as it exists, so a failure further on (an OIDC key
        # fetch, a database that is not there) still closes what was opened, in reverse order.
        async with contextlib.AsyncExitStack() as resources:
            engine = make_engine(settings.database_url, settings.database_pool_size)
            resources.push_async_callback(engine.dispose)
            sessions = make_sessionmaker(engine)
            keys = await load_keys(settings, sessions)
            await ensure_admin_client(settings, sessions)
            kafka_writer = kafka_writer_of(settings)
            kafka_writer.start()
            resources.push_async_callback(kafka_writer.stop)
            subject_keys = subject_keys_of(settings, sessions, keys, KafkaKeyLog(kafka_writer))
            policy = await resources.enter_async_context(
                PolicyClient(settings.opa_url, settings.opa_timeout_s)
            )
            state = AppState(
                settings=settings,
                engine=engine,
                sessions=sessions,
                keys=keys,
                subject_keys=subject_keys,
                contracts=contracts,
                kafka_writer=kafka_writer,
                policy=policy,
                local_keyset=KeySet([*verification_keys(settings, keys.jwt)]),
                oidc_keyset=await _oidc_keyset(settings),
            )
            state.publishes = grouped_publishes(state)
            app.state.samsyn = state
            workers = build_workers(settings, sessions, contracts, policy, keys, subject_keys)
            state.worker_checks = {**worker_checks(workers), **keys_check(subject_keys)}
            # The API answers (/healthz; 503 where a key is needed) while the key log is read.
            tasks: list[asyncio.Task[Any]] = []
            stopping = asyncio.Event()
            starting = asyncio.create_task(
                start_after_key_import(
                    settings, sessions, subject_keys, workers, tasks, stopping, read_keys
                )
            )
            resources.push_async_callback(stop_workers, workers, tasks)
            resources.push_async_callback(asyncio.wait, {starting})
            resources.callback(stopping.set)
            log.info(
                "samsyn started",
                workers=settings.workers,
                kafka=settings.kafka_bootstrap,
                opa=settings.opa_url,
            )
            yield

    app = FastAPI(
        title="Samsyn",
        version="1.0.0",
        summary="Lawful, audited information sharing around one child (Backa barnet).",
        description="Events in (CloudEvents 1.0), policy-decided slices out, every decision "
        "in a tamper-evident audit trail. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Operation ids are the handlers' names (create_consent, publish, feed): what a client
        # generated from the document calls its functions.
        generate_unique_id_function=lambda route: route.name,
        telemetry=telemetry.OFF,
    )
    install_handlers(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(HttpMetrics)
    app.add_middleware(RequestId)  # outermost: the id is bound for everything inside
    install_openapi(app, contracts, settings)
    install_docs(app)
    for r in (
        auth_router,
        ingest_router,
        registry_router,
        privacy_router,
        feed_router,
        children_router,
        webhook_router,
        audit_router,
        followup_router,
        console_router,
    ):
        app.include_router(r)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: PROBLEMS[503]})
    async def readyz(state: StateDep) -> Any:
        """Kafka metadata, OPA health, a database round trip, and the progress of each worker
        this process runs; 503 naming what is down."""
        checks = dependency_checks(state.settings, state.engine, state.policy)
        return await readiness({**checks, **state.worker_checks})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
