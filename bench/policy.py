"""Policy time per event, measured apart from the pipeline with the router's own inputs.

The inputs are built by the router's ``build_input`` from the run's database and the warm-up
records of ``events.v1`` (four candidates per event), and sent with the router's ``PolicyClient``
(the same HTTP client, JSON handling and ``?provenance=true``), one query at a time like the
router. Per batch size: the client-side time of a query divided by the events in it (p50, p99),
and OPA's own evaluation time (``?metrics=true``: ``timer_server_handler_ns`` and
``timer_rego_query_eval_ns``) per event.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import httpx

from bench.load import Template
from broker.contracts import Contracts
from broker.infra.db import make_engine, make_sessionmaker, utcnow
from broker.policy.client import PACKAGE, RULE, PolicyClient
from broker.policy.input import Pending, build_input


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def policy_inputs(
    database_url: str, templates: list[Template], sizes: list[int]
) -> dict[int, dict[str, Any]]:
    """One policy input per batch size, as the router builds it."""
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    contracts = Contracts()
    out: dict[int, dict[str, Any]] = {}
    try:
        for size in sizes:
            picked = [templates[i % len(templates)] for i in range(size)]
            events = [
                Pending(
                    source_org=t.record.source_org,
                    source_kind=t.record.source_kind,
                    pseudonym=t.record.subject_pseudonym,
                    envelope=t.envelope,
                )
                for t in picked
            ]
            async with sessions() as session:
                out[size] = await build_input(session, contracts, events, utcnow())
    finally:
        await engine.dispose()
    return out


async def time_policy(
    opa_url: str, inputs: dict[int, dict[str, Any]], seconds_per_size: float = 4.0
) -> dict[int, dict[str, float]]:
    """Per batch size: per-event query time p50/p99 (client side) and OPA's server-side time."""
    results: dict[int, dict[str, float]] = {}
    async with PolicyClient(opa_url, 10.0) as policy, httpx.AsyncClient(timeout=30) as raw:
        for size, batch in inputs.items():
            for _ in range(3):  # warm the connection and OPA's caches
                await policy.decide(batch)
            per_event: list[float] = []
            deadline = time.perf_counter() + seconds_per_size
            while time.perf_counter() < deadline or len(per_event) < 20:
                answer = await policy.decide(batch)
                per_event.append(answer.seconds / size)
                if len(per_event) >= 5000:
                    break
            server: list[float] = []
            evaluation: list[float] = []
            for _ in range(max(5, min(50, len(per_event) // 4))):
                r = await raw.post(
                    f"{opa_url}/v1/data/{PACKAGE.replace('.', '/')}/{RULE}"
                    "?metrics=true&provenance=true",
                    json={"input": batch},
                )
                m = r.json().get("metrics", {})
                server.append(m.get("timer_server_handler_ns", 0) / 1e6 / size)
                evaluation.append(m.get("timer_rego_query_eval_ns", 0) / 1e6 / size)
            results[size] = {
                "queries": len(per_event),
                "p50_ms": round(quantile(per_event, 0.5) * 1000, 3),
                "p99_ms": round(quantile(per_event, 0.99) * 1000, 3),
                "mean_ms": round(statistics.fmean(per_event) * 1000, 3),
                "opa_handler_ms": round(statistics.median(server), 3),
                "opa_eval_ms": round(statistics.median(evaluation), 3),
                "events_per_s_one_client": round(1 / statistics.fmean(per_event), 1),
            }
    return results


async def concurrent_throughput(
    opa_url: str, batch: dict[str, Any], clients: int, seconds: float = 4.0
) -> float:
    """Events/s OPA decides with ``clients`` queries in flight (the ceiling two routers would
    meet on this machine)."""
    size = len(batch["events"])
    done = 0

    async def one(policy: PolicyClient) -> None:
        nonlocal done
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await policy.decide(batch)
            done += size

    async with PolicyClient(opa_url, 30.0) as policy:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(policy) for _ in range(clients)))
        return done / (time.perf_counter() - t0)


def shuffle(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(templates)
    random.shuffle(out)
    return out


async def opa_cpu_per_event(
    opa_url: str, pid: int, batch: dict[str, Any], events: int
) -> tuple[float, float]:
    """OPA's process CPU ms and the client's wall ms per event over ``events`` decided in queries
    of ``batch``'s size, one at a time."""
    import psutil

    size = len(batch["events"])
    proc = psutil.Process(pid)
    async with PolicyClient(opa_url, 60.0) as client:
        for _ in range(2):
            await client.decide(batch)
        t0 = proc.cpu_times()
        w0 = time.perf_counter()
        done = 0
        while done < events:
            await client.decide(batch)
            done += size
        wall = time.perf_counter() - w0
        t1 = proc.cpu_times()
    cpu = (t1.user + t1.system) - (t0.user + t0.system)
    return 1000 * cpu / done, 1000 * wall / done
