"""Keep a worker's Kafka session running: after any failure, start it again after a pause.

Every worker (router, materializer, sealer) works in sessions that own their Kafka clients; a
failed session is torn down whole and a fresh one resumes from the committed offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the worker is asked to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


async def keep_running(
    session: Callable[[], Awaitable[None]], stopping: asyncio.Event, log: Any, name: str
) -> None:
    backoff = BACKOFF_START_S
    while not stopping.is_set():
        try:
            await session()
            backoff = BACKOFF_START_S
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning(
                f"{name} restarting", error=f"{type(err).__name__}: {err}", backoff_s=backoff
            )
            await pause(stopping, backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
