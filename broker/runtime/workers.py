"""The background workers a process may run, and ``samsyn worker NAME…`` to run them without the
HTTP API: a router per instance in production, and the read side (materializer and sealer) in a
process of its own everywhere, so that feed inserts and seals do not share the API's loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.sealer import Sealer
from broker.config import DECIDING, Settings
from broker.contracts import Contracts
from broker.followup.store import LedgerTokens
from broker.followup.worker import Followup
from broker.infra.db import make_engine, make_sessionmaker
from broker.infra.kafka_writer import KafkaWriter
from broker.infra.keys import Keys, load_keys, subject_keys_of
from broker.policy.client import PolicyClient
from broker.privacy.gallring import GallringWorker
from broker.privacy.keylog import KafkaKeyLog, KeyLogReader, import_key_log
from broker.privacy.keyring import SubjectKeys
from broker.router.loop import Router
from broker.runtime import worker_http
from broker.runtime.lag import LagMonitor
from broker.runtime.logging import configure_logging, dump_tasks_on_sigusr1
from broker.runtime.readiness import keys_check, worker_checks
from consumers.feed.materializer import Materializer
from consumers.webhooks.sender import WebhookSender

log = structlog.get_logger("samsyn.workers")


class Worker(Protocol):
    stopping: asyncio.Event

    async def run(self) -> None: ...


def build_workers(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    contracts: Contracts,
    policy: PolicyClient | None,
    keys: Keys,
    subject_keys: SubjectKeys,
) -> list[Worker]:
    workers: list[Worker] = []
    if "router" in settings.workers:
        assert policy is not None, "the router decides: it needs a policy client"
        workers.append(Router(settings, sessions, contracts, policy, subject_keys))
        workers.append(LagMonitor(settings))  # router lag is watched where routers run
    if "materializer" in settings.workers:
        workers.append(Materializer(settings, sessions, subject_keys))
    if "sealer" in settings.workers:
        workers.append(Sealer(settings, sessions, keys.audit, keys.audit_kid))
    if "webhooks" in settings.workers:
        workers.append(WebhookSender(settings, sessions, subject_keys))
    if "gallring" in settings.workers:
        workers.append(GallringWorker(settings, sessions, subject_keys))
    if "followup" in settings.workers:
        tokens = LedgerTokens(keys.followup)
        workers.append(Followup(settings, sessions, tokens, subject_keys))
    return workers


async def start_after_key_import(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    subject_keys: SubjectKeys,
    workers: list[Worker],
    tasks: list[asyncio.Task[Any]],
    stopping: asyncio.Event,
    read_keys: KeyLogReader | None = None,
) -> None:
    """Import the key log (read with ``read_keys``, Kafka's by default), then hand out keys and
    start ``workers`` (their tasks into ``tasks``): nothing is opened or sealed with a key a
    restored database should not hold, or found missing that the log has."""
    if await import_key_log(settings, sessions, stopping, read_keys) is None:
        return
    subject_keys.imported()
    tasks.extend(start_workers(workers))


def start_workers(workers: list[Worker]) -> list[asyncio.Task[Any]]:
    """Run each worker as a task; a worker that ends before it was asked to stop is logged (it
    would otherwise be gone without a trace while the process stays up)."""

    def ended(worker: Worker, task: asyncio.Task[Any]) -> None:
        if worker.stopping.is_set():
            return
        error = None if task.cancelled() else task.exception()
        log.error(
            "worker ended", worker=type(worker).__name__, error=repr(error) if error else None
        )

    tasks = []
    for w in workers:
        task = asyncio.create_task(w.run(), name=type(w).__name__)
        task.add_done_callback(functools.partial(ended, w))
        tasks.append(task)
    return tasks


async def stop_workers(workers: list[Worker], tasks: list[asyncio.Task[Any]]) -> None:
    for w in workers:
        w.stopping.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    for t in tasks:
        t.cancel()


async def run_workers(settings: Settings) -> None:
    """Run the configured workers until SIGTERM or SIGINT."""
    configure_logging()
    dump_tasks_on_sigusr1()
    engine = make_engine(settings.database_url, settings.database_pool_size)
    sessions = make_sessionmaker(engine)
    keys = await load_keys(settings, sessions)
    # The key log's writer: gallring and the follow-up make and destroy keys here.
    kafka_writer = KafkaWriter(settings)
    kafka_writer.start()
    subject_keys = subject_keys_of(settings, sessions, keys, KafkaKeyLog(kafka_writer))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as resources:
        # Only a process with a deciding worker asks OPA, or waits for it to be ready.
        policy = (
            await resources.enter_async_context(
                PolicyClient(settings.opa_url, settings.opa_timeout_s)
            )
            if any(w in DECIDING for w in settings.workers)
            else None
        )
        workers = build_workers(settings, sessions, Contracts(), policy, keys, subject_keys)
        tasks: list[asyncio.Task[Any]] = []
        starting = asyncio.create_task(
            start_after_key_import(settings, sessions, subject_keys, workers, tasks, stop)
        )
        # /healthz, /readyz and /metrics for probes and scrapes, when a port is set.
        checks = {**worker_checks(workers), **keys_check(subject_keys)}
        http = (
            worker_http.server(settings, engine, policy, checks) if settings.metrics_port else None
        )
        serving = asyncio.create_task(http.serve(), name="http") if http else None
        log.info("workers started", workers=settings.workers, http_port=settings.metrics_port)
        await stop.wait()
        await starting
        await stop_workers(workers, tasks)
        if http is not None and serving is not None:
            http.should_exit = True
            await serving
    await kafka_writer.stop()
    await engine.dispose()
