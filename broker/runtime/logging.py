"""Structured JSON logs (structlog) on stderr."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import structlog


def configure_logging(level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )


def dump_tasks_on_sigusr1() -> None:
    """On SIGUSR1, print every asyncio task of this process and where it waits (on stderr): what
    to look at when a worker is alive and silent (``kill -USR1 PID``)."""
    loop = asyncio.get_running_loop()

    def dump() -> None:
        for task in asyncio.all_tasks(loop):
            print(f"--- task {task.get_name()}", file=sys.stderr)
            task.print_stack(limit=12, file=sys.stderr)
        sys.stderr.flush()

    # Only the main thread's loop may handle signals (an app run in a thread goes without).
    with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
        loop.add_signal_handler(signal.SIGUSR1, dump)
