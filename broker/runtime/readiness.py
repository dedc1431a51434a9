"""``/readyz`` for every process: the API and a worker-only process answer the same shape.

Kafka metadata, OPA with an activated bundle, its policy data (well formed and within the
shipped ceiling: ``policy_data``) and a database round trip are checked at once, each within a
few seconds; the Kafka workers a process runs add one check each (``router``,
``materializer``, ``sealer``, ``followup``): down from a failed or stalled session until it
makes progress again (``broker.runtime.supervise``); ``subject_keys`` is down until the key log
is imported (``broker.privacy.keylog``). 200 ``{status, checks}`` when all are ok,
else 503 problem+json naming what is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import structlog
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.config import Settings
from broker.infra import kafka
from broker.policy.client import PolicyClient
from broker.privacy.keyring import SubjectKeys
from broker.runtime.metrics import DEPENDENCY_UP
from broker.runtime.supervise import Progress
from broker.web.errors import PROBLEM_JSON, TYPE_BASE

log = structlog.get_logger("samsyn.readiness")
Check = Callable[[], Awaitable[bool]]
PROBE_TIMEOUT_S = 3.0


def dependency_checks(
    settings: Settings, engine: AsyncEngine, policy: PolicyClient
) -> dict[str, Check]:
    """What every process needs: Kafka, OPA and the database."""

    async def database() -> bool:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def policy_data() -> bool:
        # OPA may be up with data that is malformed or widens the rules past the shipped
        # ceiling: every decision is then a fault and nothing is routed; say so, and which.
        faults = await policy.data_faults()
        if faults:
            log.error("policy data refused", faults=faults)
        return not faults

    return {
        "kafka": lambda: kafka.metadata_ok(settings),
        "opa": policy.healthy,
        "policy_data": policy_data,
        "database": database,
    }


@runtime_checkable
class Watched(Protocol):
    """A worker whose Kafka session is watched for progress."""

    progress: Progress


def worker_checks(workers: Iterable[object]) -> dict[str, Check]:
    """One check per watched worker, named after it (``router``, ``materializer``, ``sealer``)."""

    def check(progress: Progress) -> Check:
        async def ready() -> bool:
            return progress.ready

        return ready

    return {type(w).__name__.lower(): check(w.progress) for w in workers if isinstance(w, Watched)}


def keys_check(subject_keys: SubjectKeys) -> dict[str, Check]:
    async def imported() -> bool:
        return subject_keys.ready

    return {"subject_keys": imported}


async def readiness(checks: Mapping[str, Check]) -> Any:
    """Run every check at once; the body for 200, or a 503 problem+json response."""
    results: dict[str, bool] = {}

    async def probe(name: str, check: Check) -> None:
        try:
            results[name] = bool(await asyncio.wait_for(check(), PROBE_TIMEOUT_S))
        except Exception:
            results[name] = False

    await asyncio.gather(*(probe(name, check) for name, check in checks.items()))
    for name, ok in results.items():
        DEPENDENCY_UP.labels(name).set(1 if ok else 0)
    down = sorted(k for k, ok in results.items() if not ok)
    body = {
        "status": "ready" if not down else "unavailable",
        "checks": {k: "ok" if v else "down" for k, v in sorted(results.items())},
    }
    if not down:
        return body
    return JSONResponse(
        {
            **body,
            "type": TYPE_BASE + "not-ready",
            "title": "Not ready",
            "status": 503,
            "detail": f"down: {', '.join(down)}",
        },
        status_code=503,
        media_type=PROBLEM_JSON,
    )
