"""Waiting for what happens asynchronously (routing, sealing, materialising)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """The first truthy answer of ``check``, asked every 0.2 s for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.2)


def answers(
    url: str,
    timeout: float,
    *,
    interval: float = 0.1,
    request_timeout: float = 1,
    proc: subprocess.Popen[bytes] | None = None,
) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds (asked every ``interval``); False
    at once when ``proc``, the process that should answer, has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=request_timeout).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(interval)
    return False
