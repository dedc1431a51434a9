"""Samsyn's app in this process, for tests of what the HTTP API answers (tests/inprocess/).

The app runs its lifespan on an event loop in a thread of its own, on a database of the test's
(migrated as ``samsyn serve`` migrates it), with an in-memory Kafka producer
(:class:`FakeKafkaWriter`) and no background workers: nothing is routed, sealed or materialised.
Requests go through :class:`httpx.ASGITransport`, bridged to a synchronous :class:`httpx.Client`,
so the kit's :class:`Samsyn` and :class:`Org` callers work on it unchanged. A test that needs
Kafka, the router, OPA's decisions or a real process belongs to tests/integration/.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI

from broker.app import create_app
from broker.config import Settings
from broker.infra.migrate import upgrade
from tests.kit.fake_kafka import FakeKafkaWriter
from tests.kit.samsyn import Samsyn

T = TypeVar("T")
URL = "http://samsyn.test"


class AppThread:
    """An event loop in a daemon thread that runs ``app``'s lifespan from :meth:`start` until
    :meth:`stop`, in one task (the lifespan's resources are entered and left in one task)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="app")
        self._stopping: asyncio.Event | None = None
        self._lifespan: concurrent.futures.Future[None] | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the app's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        async def lifespan() -> None:
            self._stopping = asyncio.Event()
            try:
                async with self.app.router.lifespan_context(self.app):
                    started.set_result(None)
                    await self._stopping.wait()
            except BaseException as err:
                if not started.done():
                    started.set_exception(err)
                raise

        self._lifespan = asyncio.run_coroutine_threadsafe(lifespan(), self.loop)
        started.result(60)

    def stop(self) -> None:
        stopping, lifespan = self._stopping, self._lifespan
        if stopping is not None and lifespan is not None:
            self.loop.call_soon_threadsafe(stopping.set)
            lifespan.result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class AsgiBridge(httpx.BaseTransport):
    """A synchronous transport to the app on its thread: each request is read whole, sent
    through :class:`httpx.ASGITransport` on the app's loop, and its answer read whole."""

    def __init__(self, app: AppThread) -> None:
        self._app = app
        self._asgi = httpx.ASGITransport(app=app.app, client=("127.0.0.1", 50000))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            answer = await self._asgi.handle_async_request(forwarded)
            content = await answer.aread()
            return httpx.Response(
                answer.status_code, headers=answer.headers, stream=httpx.ByteStream(content)
            )

        return self._app.run(send())


@dataclass
class InProcessSamsyn(Samsyn):
    """A :class:`Samsyn` whose app runs in this process; ``kafka`` holds what it wrote."""

    kafka: FakeKafkaWriter = field(kw_only=True)
    app_thread: AppThread = field(kw_only=True)

    def stop(self) -> None:
        self.http.close()
        self.app_thread.stop()


def start_inprocess(database_url: str, *, opa_url: str, **settings: Any) -> InProcessSamsyn:
    """Migrate ``database_url`` and start the app on it, asking the OPA at ``opa_url``, with
    ``settings`` (Settings' field
    names, e.g. ``rate_publish_per_s``) over the test defaults. ``env`` mirrors what a process
    would be given as SAMSYN_* variables, for the tests that read it."""
    admin_id, admin_secret = "test-admin", uuid.uuid4().hex
    prefix = f"t{uuid.uuid4().hex[:8]}."
    chosen = Settings(
        env="test",
        database_url=database_url,
        kafka_bootstrap="127.0.0.1:9",  # never dialled: the producer is the fake's
        opa_url=opa_url,
        topic_prefix=prefix,
        issuer=URL,
        admin_client_id=admin_id,
        admin_client_secret=admin_secret,
        workers=[],
        **settings,
    )
    upgrade(database_url)
    kafka = FakeKafkaWriter(chosen)
    app = AppThread(
        create_app(chosen, kafka_writer_of=lambda _: kafka, read_keys=kafka.read_key_log)
    )
    app.start()
    env = {
        "SAMSYN_ENV": "test",
        "SAMSYN_DATABASE_URL": database_url,
        "SAMSYN_OPA_URL": opa_url,
        "SAMSYN_TOPIC_PREFIX": prefix,
        "SAMSYN_ISSUER": URL,
        "SAMSYN_ADMIN_CLIENT_ID": admin_id,
        "SAMSYN_ADMIN_CLIENT_SECRET": admin_secret,
    }
    return InProcessSamsyn(
        URL,
        admin_id,
        admin_secret,
        env,
        http=httpx.Client(transport=AsgiBridge(app), timeout=30),
        kafka=kafka,
        app_thread=app,
    )
