"""Keep a worker's Kafka session running: after any failure, and when it stops making progress,
tear it down and start a fresh one after a pause.

Every worker (router, materializer, sealer) works in sessions that own their Kafka clients; a
failed session is torn down whole and a fresh one resumes from the committed offsets.

A session can also hang without failing: aiokafka's transactional sender dies when the
transaction coordinator is away (``_sender_routine`` -> ``_find_coordinator`` ->
``KafkaConnectionError``; aiokafka issues #1134, #1145, #1151: the coordinator is never looked
up again), and nothing raises in the task that waits for it. So a watchdog runs beside every
session: when work is waiting (a batch in hand, or the group's lag above zero as clients of its
own see it) and the session has not made progress for ``SAMSYN_WORKER_STALL_S``, the session is
cancelled and a new one started with new clients. The worker's ``/readyz`` check
(:attr:`Progress.ready`) says not ready from a failure or a stall until a session makes
progress again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import Counter

from broker.config import Settings
from broker.runtime.offsets import backlog

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0
# How long a cancelled session may take to close its clients before it is left behind (a
# client whose connection is dead can wait on it for ever; the next session must not).
TEARDOWN_S = 10.0
# While a session is left behind, a full collection this often: what it holds is closed when
# the collector finds it unreachable (SQLAlchemy rolls back and returns a connection lost that
# way), and with the process's thresholds (broker/runtime/heap.py) a full collection may not
# come by itself for a long time; meanwhile an SQLite transaction of that session would hold
# the database's write lock.
LEFT_BEHIND_COLLECT_S = 5.0

SESSION_RESTARTS = Counter(
    "samsyn_worker_restarts_total",
    "Kafka sessions of a worker torn down and started again, by cause (failed, stalled)",
    ["worker", "cause"],
)

T = TypeVar("T")


class Stalled(Exception):
    """Work was waiting and the session made no progress within the deadline."""


class CancelledInside(Exception):
    """The session ended by a cancellation that did not come from the worker (aiokafka lets a
    cancelled internal task's CancelledError out of a call); it must not end the worker."""


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the worker is asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


@dataclass
class Progress:
    """A worker's signs of life: written by its session, read by the watchdog and ``/readyz``."""

    moved_at: float = field(default_factory=time.monotonic)
    holding: bool = False  # a batch fetched and not yet committed
    ready: bool = True  # False from a failure or a stall until the session moves again

    def hold(self, in_hand: bool) -> None:
        """Whether a batch is in hand (fetched, not yet committed): it must be committed within
        the deadline."""
        self.holding = in_hand

    def moved(self) -> None:
        """The session is doing its work: it committed, or it is waiting on something other
        than Kafka that it knows about (OPA). Fetching nothing is no sign of life: a consumer
        that lost its group fetches nothing while work waits."""
        self.moved_at = time.monotonic()
        self.ready = True

    async def meanwhile(self, work: Awaitable[T], every_s: float = 1.0) -> T:
        """Await ``work`` that does not wait on Kafka (a policy decision), counting as progress
        while it runs: a router holding events while OPA is away is not stalled."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=every_s)
                self.moved()
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task


@dataclass
class Watch:
    """The watchdog of one worker: its progress, the deadline, and how to ask whether work is
    waiting (the group's lag, with clients of its own)."""

    progress: Progress
    stall_s: float
    backlog: Callable[[], Awaitable[int]]
    # The deadline of the current session: ``stall_s``, doubled after each stall with no
    # progress since the one before (up to 8 times), so that a session that needs long to join
    # its group on a slow, just restarted Kafka is not torn down before it could.
    patience_s: float = 0.0

    def __post_init__(self) -> None:
        self.patience_s = self.stall_s

    def stalled_again(self) -> None:
        """A stall: double the patience if nothing moved since the last one, else start over."""
        moved = self.progress.ready
        self.patience_s = self.stall_s if moved else min(self.patience_s * 2, 8 * self.stall_s)

    @classmethod
    def group(
        cls, progress: Progress, settings: Settings, group: str, topics: tuple[str, ...]
    ) -> Watch:
        """The watchdog of a worker that reads ``topics`` as consumer group ``group``."""
        return cls(progress, settings.worker_stall_s, lambda: backlog(settings, group, topics))

    async def stalled(self, log: Any, name: str) -> None:
        """Return when the session is stalled: work waiting and no progress for ``stall_s``."""
        p = self.progress
        tick = min(self.stall_s / 4, 2.0)
        while True:
            await asyncio.sleep(tick)
            overdue = time.monotonic() - p.moved_at >= self.patience_s
            if p.holding:
                if overdue:
                    log.warning(f"{name} stalled with a batch in hand", after_s=self.patience_s)
                    return
                continue
            if not overdue and p.ready:
                continue
            # Nothing in hand, and no sign of life for a while (or not ready since a restart):
            # is anything waiting that this session should have fetched?
            try:
                waiting = await within(self.backlog(), self.stall_s, "asking the lag")
            except Exception as err:
                # Kafka unreachable for new clients too: a new session would not help.
                if overdue:
                    log.warning(f"{name} watchdog: no lag", error=f"{type(err).__name__}: {err}")
                continue
            if waiting == 0:
                p.moved()
            elif overdue:
                log.warning(f"{name} stalled", waiting=waiting, after_s=self.patience_s)
                return


async def keep_running(
    session: Callable[[], Coroutine[Any, Any, None]],
    stopping: asyncio.Event,
    log: Any,
    name: str,
    watch: Watch,
) -> None:
    backoff = BACKOFF_START_S
    progress = watch.progress
    while not stopping.is_set():
        progress.holding = False
        progress.moved_at = time.monotonic()  # a new session gets the whole deadline
        log.info(f"{name} session starting")
        running = asyncio.create_task(session(), name=f"{name}-session")
        watchdog = asyncio.create_task(watch.stalled(log, name), name=f"{name}-watchdog")
        try:
            done, _ = await asyncio.wait({running, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watchdog.cancel()
            if not running.done():
                running.cancel()
                await _left_behind(running, log, name)
        try:
            if running not in done:
                stalled_after = watch.patience_s
                watch.stalled_again()
                raise Stalled(f"work waiting and no progress for {stalled_after:.0f} s")
            if running.cancelled():
                # Not this worker's cancellation: that one is raised at the wait above.
                raise CancelledInside("the session ended by a CancelledError from a client")
            running.result()
            backoff = BACKOFF_START_S
        except Exception as err:
            progress.ready = False
            cause = "stalled" if isinstance(err, Stalled) else "failed"
            SESSION_RESTARTS.labels(name, cause).inc()
            log.warning(
                f"{name} restarting", error=f"{type(err).__name__}: {err}", backoff_s=backoff
            )
            await pause(stopping, backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)


async def within(work: Awaitable[T], seconds: float, what: str) -> T:
    """``work``'s result, or :class:`TimeoutError` after ``seconds``. Unlike ``wait_for`` it
    does not wait for the cancelled work to end: a Kafka client closing while its connection is
    dead can take its cancellation for ever (aiokafka's sender awaits its in-flight requests)."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_forget)
        raise TimeoutError(f"{what} took longer than {seconds:g} s")
    return task.result()


def _forget(task: asyncio.Future[Any]) -> None:
    """Retrieve a left-behind task's outcome, so that it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()


async def close_within(closing: Awaitable[None], log: Any, what: str) -> None:
    """Close a client of a session that is ending, within ``TEARDOWN_S``: a producer whose
    sender waits for a coordinator that is gone would wait with it for ever (it flushes first).
    What it leaves open is closed by the garbage collector; the next session has new clients."""
    try:
        await within(closing, TEARDOWN_S, f"closing the {what}")
    except Exception as err:
        log.warning(f"{what} not closed cleanly", error=f"{type(err).__name__}: {err}")


# The collecting tasks, held until they end (the event loop keeps only weak references).
_collecting: set[asyncio.Task[None]] = set()


async def _left_behind(running: asyncio.Task[None], log: Any, name: str) -> None:
    """Wait for a cancelled session to close its clients, at most ``TEARDOWN_S``; past that,
    collect until the session has ended or been collected."""
    done, _ = await asyncio.wait({running}, timeout=TEARDOWN_S)
    if not done:
        log.error(f"{name} session did not close within {TEARDOWN_S:.0f} s; left behind")
        collecting = asyncio.create_task(
            _collect_until_gone(weakref.ref(running), log, name), name=f"{name}-left-behind"
        )
        _collecting.add(collecting)
        collecting.add_done_callback(_collecting.discard)


async def _collect_until_gone(left: weakref.ref[asyncio.Task[None]], log: Any, name: str) -> None:
    """A full collection every ``LEFT_BEHIND_COLLECT_S`` until the session ``left`` behind has
    ended or the collector has closed it; a weak reference, so as not to keep it alive."""
    while True:
        await asyncio.sleep(LEFT_BEHIND_COLLECT_S)
        gc.collect()
        session = left()
        if session is None or session.done():
            log.info(f"{name} session left behind is closed")
            return
        # Held over the next sleep, this reference would keep the session from being collected.
        del session
