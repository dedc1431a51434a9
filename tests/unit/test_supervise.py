"""The progress watchdog of a worker's Kafka session (broker/runtime/supervise.py): a session
that holds work and makes no progress is torn down and a new one started; one that waits on OPA,
or has nothing to do, is left alone; /readyz says not ready in between."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from broker.infra.kafka import sender_alive
from broker.runtime.readiness import worker_checks
from broker.runtime.supervise import Progress, Watch, keep_running, within

STALL_S = 0.3
log = structlog.get_logger("test")


class FakeWorker:
    """A worker whose sessions are scripted: each call of ``session`` runs the next script."""

    def __init__(self, *scripts: str, lag: int = 0) -> None:
        self.scripts = list(scripts)
        self.started = 0
        self.cancelled = 0
        self.lag = lag
        self.progress = Progress()
        self.stopping = asyncio.Event()
        self.ready_seen: list[bool] = []
        self.closed_by_collector = asyncio.Event()

    async def backlog(self) -> int:
        return self.lag

    async def session(self) -> None:
        self.started += 1
        script = self.scripts.pop(0) if self.scripts else "commit-and-stop"
        try:
            if script == "hang-holding":  # a batch in hand, the commit never returns
                self.progress.hold(True)
                await asyncio.Event().wait()
            elif script == "hang-idle":  # fetches nothing for ever (a consumer out of its group)
                self.progress.hold(False)
                await asyncio.Event().wait()
            elif script == "hang-deaf":  # hangs, and stays on for a while when cancelled
                self.progress.hold(True)
                deaf_until = time.monotonic() + 20 * STALL_S
                while time.monotonic() < deaf_until:
                    try:
                        await asyncio.sleep(STALL_S / 10)
                    except asyncio.CancelledError:
                        continue
            elif script == "hang-unreachable":  # when cancelled, waits on what nothing holds
                self.progress.hold(True)
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    try:
                        await asyncio.get_running_loop().create_future()
                    finally:
                        # Reached when the collector closes the abandoned coroutine.
                        self.closed_by_collector.set()
            elif script == "wait-on-opa":  # holds a batch while OPA is away for 3 deadlines
                self.progress.hold(True)
                await self.progress.meanwhile(asyncio.sleep(3 * STALL_S), every_s=STALL_S / 5)
                self.progress.moved()
                self.stopping.set()
            elif script == "cancelled-inside":  # a client's internal task lets its cancel out
                raise asyncio.CancelledError
            elif script == "commit-and-stop":
                self.ready_seen.append(self.progress.ready)
                self.progress.hold(True)
                self.progress.moved()
                self.ready_seen.append(self.progress.ready)
                self.stopping.set()
        except asyncio.CancelledError:
            if script != "cancelled-inside":
                self.cancelled += 1
            raise

    async def run(self) -> float:
        started = time.monotonic()
        watch = Watch(self.progress, STALL_S, self.backlog)
        async with asyncio.timeout(10):
            await keep_running(self.session, self.stopping, log, "fake", watch)
        return time.monotonic() - started


async def test_a_session_holding_a_batch_without_progress_is_rebuilt() -> None:
    """The commit hangs (aiokafka's dead sender): after the deadline the session is cancelled
    and a new one started; the worker is not ready from the stall until the new session
    commits."""
    worker = FakeWorker("hang-holding")
    took = await worker.run()
    assert worker.started == 2
    assert worker.cancelled == 1
    assert worker.ready_seen == [False, True]
    assert STALL_S <= took < 5 * STALL_S + 1  # the deadline, the tick and a short backoff


async def test_patience_doubles_while_nothing_moves() -> None:
    """Two stalls in a row: the second session gets twice the deadline (a slow group join after
    a Kafka restart is not cut short for ever)."""
    worker = FakeWorker("hang-holding", "hang-holding")
    took = await worker.run()
    assert worker.started == 3
    assert took >= STALL_S + 2 * STALL_S


async def test_a_cancellation_from_inside_the_session_does_not_end_the_worker() -> None:
    """Found under Kafka restarts: the materializer's and sealer's workers ended for good when a
    CancelledError came out of an aiokafka call, and nothing was materialised after."""
    worker = FakeWorker("cancelled-inside")
    await worker.run()
    assert worker.started == 2


async def test_an_idle_session_with_work_waiting_is_rebuilt() -> None:
    """Nothing fetched, but the group's lag (asked with other clients) is above zero."""
    worker = FakeWorker("hang-idle", lag=5)
    await worker.run()
    assert worker.started == 2
    assert worker.cancelled == 1


async def test_an_idle_session_with_nothing_waiting_is_left_alone() -> None:
    worker = FakeWorker("hang-idle", lag=0)
    runner = asyncio.create_task(worker.run())
    await asyncio.sleep(4 * STALL_S)
    assert worker.started == 1
    assert worker.progress.ready
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_waiting_on_opa_is_progress() -> None:
    """A router holding its batch while OPA is away (fail closed) is alive, not stalled."""
    worker = FakeWorker("wait-on-opa")
    await worker.run()
    assert worker.started == 1
    assert worker.cancelled == 0


async def test_a_session_that_will_not_close_is_left_behind(monkeypatch: Any) -> None:
    """A cancelled session that never ends (a client waiting on a dead connection) does not
    keep the worker from starting a new one."""
    monkeypatch.setattr("broker.runtime.supervise.TEARDOWN_S", 0.2)
    worker = FakeWorker("hang-deaf")
    took = await worker.run()
    assert worker.started == 2
    assert took < 10 * STALL_S  # not waiting for the deaf session to end


@pytest.fixture
def no_automatic_collections() -> Iterator[None]:
    """Only the collections asked for: in these processes full ones are rare (heap.py)."""
    gc.disable()
    yield
    gc.enable()


@pytest.mark.usefixtures("no_automatic_collections")
async def test_a_session_left_behind_is_collected(monkeypatch: Any) -> None:
    """A session left behind waiting on something unreachable holds its clients (an SQLite
    transaction, the write lock) until a full collection closes it: the supervisor asks for
    them until it is gone."""
    monkeypatch.setattr("broker.runtime.supervise.TEARDOWN_S", 0.2)
    monkeypatch.setattr("broker.runtime.supervise.LEFT_BEHIND_COLLECT_S", 0.1)
    worker = FakeWorker("hang-unreachable")
    await worker.run()
    assert worker.started == 2
    await asyncio.wait_for(worker.closed_by_collector.wait(), 5)


async def test_readyz_check_follows_the_progress() -> None:
    worker = FakeWorker()
    checks = worker_checks([worker, object()])
    assert list(checks) == ["fakeworker"]
    assert await checks["fakeworker"]()
    worker.progress.ready = False
    assert not await checks["fakeworker"]()


async def test_sender_alive_sees_the_sender_task_end() -> None:
    async def dies() -> None:
        raise RuntimeError("coordinator gone")

    task = asyncio.create_task(dies())
    await asyncio.gather(task, return_exceptions=True)
    dead: Any = SimpleNamespace(_sender=SimpleNamespace(sender_task=task))
    assert not sender_alive(dead)
    running = asyncio.create_task(asyncio.sleep(1))
    alive: Any = SimpleNamespace(_sender=SimpleNamespace(sender_task=running))
    assert sender_alive(alive)
    running.cancel()
    not_started: Any = SimpleNamespace(_sender=SimpleNamespace(sender_task=None))
    assert sender_alive(not_started)


async def test_within_does_not_wait_for_a_client_that_ignores_its_cancellation() -> None:
    """asyncio.wait_for would wait here until the deaf call ends by itself (aiokafka's sender
    awaits its in-flight requests when cancelled, for ever while Kafka is away)."""

    async def deaf() -> None:
        until = time.monotonic() + 20 * STALL_S
        while time.monotonic() < until:
            try:
                await asyncio.sleep(STALL_S / 10)
            except asyncio.CancelledError:
                continue

    started = time.monotonic()
    with pytest.raises(TimeoutError, match="closing the producer"):
        await within(deaf(), STALL_S, "closing the producer")
    assert time.monotonic() - started < 5 * STALL_S
