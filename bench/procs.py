"""The processes a benchmark run needs, and what it watches of them.

Samsyn runs as three processes, as in production: the API (ingest, feeds), the router (``samsyn
worker router``) and the read side (``samsyn worker materializer sealer``), the two workers with
their /metrics on ports of their own.
Kafka and PostgreSQL are the local stack's (``deploy/local/stack.sh up``); OPA is a private
server started from the same binary, the same bundle file and the same flags as
``deploy/local/opa.sh`` (so other engineers' test traffic on the stack's OPA does not mix into the
figures, and its CPU time and server flags are ours to measure).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.kit import (
    REPO,
    Samsyn,
    answers,
    drop_postgres_database,
    free_port,
    new_postgres_database,
    opa_binary,
    start_samsyn,
    start_worker,
    stop_process,
)

VAR = REPO / "var" / "bench"
SAMSYN_PROCESSES = ("api", "router", "read_side")
STACK_OPA_DIR = REPO / "var" / "stack" / "opa"


# --------------------------------------------------------------------------------------- OPA
@dataclass
class PrivateOpa:
    """``opa run --server`` on the stack's bundle file with opa.sh's flags (decision logging on,
    every entry dropped, so OPA hands out decision ids), plus optional extra flags/env."""

    name: str = "opa"
    decision_log: bool = True
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = opa_binary()
        bundle = STACK_OPA_DIR / "samsyn"
        if not bundle.is_file():
            raise RuntimeError(f"no OPA bundle at {bundle}: run deploy/local/stack.sh up")
        workdir = VAR / self.name
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundle, workdir / "samsyn")  # the bundle is named after its file
        flags = ["--set", "decision_logs.console=true"] if self.decision_log else []
        if self.decision_log:
            flags += ["--set", "decision_logs.drop_decision=/system/log/drop"]
        self.proc = subprocess.Popen(
            [
                binary,
                "run",
                "--server",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "error",
                "--log-format",
                "json",
                "--bundle",
                "samsyn",
                *flags,
            ],
            cwd=workdir,
            # GOGC as deploy/local/opa.sh sets it, unless the variant sets its own
            env={**os.environ, "GOGC": os.environ.get("SAMSYN_OPA_GOGC", "200"), **self.env},
            stdout=(workdir / "opa.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        if not answers(f"{self.url}/health?bundles", 30):
            self.stop()
            raise RuntimeError(f"private OPA did not start; see {workdir / 'opa.log'}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=10)


# ------------------------------------------------------------------------------- databases
def new_database(stack: dict[str, str], kind: str, tag: str) -> str:
    """A fresh, empty database for one run: a PostgreSQL database on the stack's cluster, or a
    SQLite file under var/bench/."""
    if kind == "sqlite":
        VAR.mkdir(parents=True, exist_ok=True)
        path = VAR / f"{tag}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    return new_postgres_database(stack, f"samsyn_bench_{tag}_{uuid.uuid4().hex[:6]}")


def drop_database(stack: dict[str, str], url: str) -> None:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    drop_postgres_database(stack, url.rsplit("/", 1)[1])


# ------------------------------------------------------------------------------ deployment
@dataclass
class Deployment:
    """One Samsyn under test: the API, router and read-side processes, on fresh topics (their
    own prefix) and a fresh database."""

    stack: dict[str, str]
    opa: PrivateOpa
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    samsyn: Samsyn | None = None
    router: subprocess.Popen[bytes] | None = None
    router_port: int = field(default_factory=free_port)

    def start(self) -> Samsyn:
        VAR.mkdir(parents=True, exist_ok=True)
        self.samsyn = start_samsyn(
            {**self.stack, "SAMSYN_OPA_URL": self.opa.url},
            self.database_url,
            workers="[]",  # the router and the read side run in processes of their own
            read_side=True,
            prefix=f"bench{uuid.uuid4().hex[:8]}.",
            extra_env={
                # the bench publishes far above a real agency's rate from few clients
                "SAMSYN_RATE_PUBLISH_PER_S": "100000",
                "SAMSYN_RATE_PUBLISH_BURST": "100000",
                "SAMSYN_RATE_TOKEN_BURST": "1000",
                "SAMSYN_TOKEN_TTL_S": "86400",
                **self.extra_env,
            },
            log_dir=VAR / "logs",
        )
        self.start_router()
        return self.samsyn

    @property
    def api(self) -> Samsyn:
        assert self.samsyn is not None
        return self.samsyn

    @property
    def prefix(self) -> str:
        return self.api.env["SAMSYN_TOPIC_PREFIX"]

    def start_router(self) -> None:
        self.router = start_worker(
            self.api, "router", extra_env={"SAMSYN_METRICS_PORT": str(self.router_port)}
        )
        url = f"http://127.0.0.1:{self.router_port}/readyz"
        if not answers(url, 60, interval=0.2, request_timeout=2, proc=self.router):
            if self.router.poll() is not None:
                raise RuntimeError("the router exited; see var/bench/logs/")
            raise RuntimeError("the router did not become ready")

    def stop_router(self) -> None:
        stop_process(self.router, timeout=30)
        self.router = None

    def stop(self) -> None:
        self.stop_router()
        if self.samsyn is not None:
            self.samsyn.stop()

    def delete_topics(self) -> None:
        """Remove this run's topics (a million-event run leaves gigabytes in Kafka)."""
        if self.samsyn is None:
            return
        from aiokafka.admin import AIOKafkaAdminClient

        async def delete() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.stack["SAMSYN_KAFKA_BOOTSTRAP"])
            await admin.start()
            try:
                mine = [t for t in await admin.list_topics() if t.startswith(self.prefix)]
                if mine:
                    await admin.delete_topics(mine)
            finally:
                await admin.close()

        asyncio.run(delete())

    def router_metrics(self) -> dict[str, float]:
        return scrape(f"http://127.0.0.1:{self.router_port}/metrics")

    def api_metrics(self) -> dict[str, float]:
        return scrape(f"{self.api.url}/metrics")

    def opa_queries(self) -> float:
        """How many queries OPA has answered (``POST /v1/data``), from its own metrics."""
        found = scrape(f"{self.opa.url}/metrics")
        return total(found, "http_request_duration_seconds_count", handler="v1/data")

    def read_side_metrics(self) -> dict[str, float]:
        """The materializer's and the sealer's counters."""
        assert self.api.read_side_url is not None
        return scrape(f"{self.api.read_side_url}/metrics")

    def pids(self) -> dict[str, int]:
        out = {}
        if self.samsyn is not None and self.samsyn.proc is not None:
            out["api"] = self.samsyn.proc.pid
        if self.samsyn is not None and self.samsyn.read_side is not None:
            out["read_side"] = self.samsyn.read_side.pid
        if self.router is not None:
            out["router"] = self.router.pid
        return out


_METRICS = httpx.Client(timeout=5)


def scrape(url: str) -> dict[str, float]:
    """Prometheus text as ``{"name{label=value,...}": value}`` (labels sorted).

    One client for every scrape: ``httpx.get`` builds a client, and with it an SSL context that
    loads the CA store, on every call; that was three quarters of the harness's own CPU while it
    waited for the pipeline, taken from the machine being measured."""
    text = _METRICS.get(url).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
    return out


def total(metrics: dict[str, float], name: str, **match: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``match``."""
    found = 0.0
    for key, value in metrics.items():
        base, pairs = _labels(key)
        if base != name:
            continue
        if all(pairs.get(k) == v for k, v in match.items()):
            found += value
    return found


def _labels(key: str) -> tuple[str, dict[str, str]]:
    base, _, labels = key.partition("{")
    return base, dict(p.split("=", 1) for p in labels.rstrip("}").split(",") if "=" in p)


def hist_quantile(
    before: dict[str, float], after: dict[str, float], name: str, q: float, **match: str
) -> float | None:
    """The ``q`` quantile of what histogram ``name`` (its series with the labels ``match``)
    observed between two scrapes (linear interpolation inside the bucket, as Prometheus'
    histogram_quantile does)."""
    buckets: list[tuple[float, float]] = []
    for key, value in after.items():
        base, labels = _labels(key)
        if base == f"{name}_bucket" and all(labels.get(k) == v for k, v in match.items()):
            buckets.append((float(labels["le"]), value - before.get(key, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    low_le, low_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return low_le
            width = count - low_count
            return low_le + (le - low_le) * ((rank - low_count) / width if width else 1.0)
        low_le, low_count = le, count
    return low_le


def stages(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per router stage: batches, seconds in all, and ms per batch, between two scrapes."""
    out: dict[str, dict[str, float]] = {}
    for key, value in after.items():
        base, labels = _labels(key)
        if base == "samsyn_router_stage_seconds_sum":
            stage = labels["stage"]
            count_key = key.replace("_sum{", "_count{")
            n = after.get(count_key, 0.0) - before.get(count_key, 0.0)
            seconds = value - before.get(key, 0.0)
            out[stage] = {
                "batches": n,
                "seconds": round(seconds, 2),
                "ms_per_batch": round(1000 * seconds / n, 2) if n else 0.0,
            }
    return out


# ------------------------------------------------------------------------- process sampling
def stack_pids() -> dict[str, list[int]]:
    """Kafka's and PostgreSQL's processes (shared with other users of the stack)."""
    out: dict[str, list[int]] = {}
    kafka_pidfile = REPO / "var" / "stack" / "kafka" / "kafka.pid"
    if kafka_pidfile.is_file():
        out["kafka"] = [int(kafka_pidfile.read_text().split()[0])]
    pg = [
        p.pid
        for p in psutil.process_iter(["name"])
        if (p.info.get("name") or "").startswith("postgres")
    ]
    if pg:
        out["postgres"] = pg
    return out


class Sampler:
    """Samples RSS (every ``interval`` s) of the named processes and their CPU time, in a thread.

    ``rss`` holds ``(t, name, MB)``; ``cpu()`` the CPU seconds used per name since ``start``.
    """

    def __init__(self, processes: dict[str, list[int]], interval: float = 0.5) -> None:
        self.interval = interval
        self.procs: dict[str, list[psutil.Process]] = {}
        for name, pids in processes.items():
            self.procs[name] = []
            for pid in pids:
                try:
                    self.procs[name].append(psutil.Process(pid))
                except psutil.NoSuchProcess:
                    continue
        self.rss: list[tuple[float, str, float]] = []
        self._cpu0 = self._cpu_now()
        self._machine0 = psutil.cpu_times()
        self._machine1: Any = None
        self._t1 = 0.0
        self._cpu1: dict[str, dict[int, float]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = time.time()

    def _cpu_now(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far per name and process (a process that has exited is left out)."""
        out: dict[str, dict[int, float]] = {}
        for name, procs in self.procs.items():
            out[name] = {}
            for p in procs:
                try:
                    t = p.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                out[name][p.pid] = t.user + t.system
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for name, procs in self.procs.items():
                if name not in SAMSYN_PROCESSES:
                    continue
                mb = 0.0
                for p in procs:
                    try:
                        mb += p.memory_info().rss / 1e6
                    except psutil.NoSuchProcess:
                        continue
                if mb:
                    self.rss.append((now - self.t0, name, mb))
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self.t0 = time.time()
        self._cpu0 = self._cpu_now()
        self._machine0 = psutil.cpu_times()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cpu1 = self._cpu_now()
        self._machine1 = psutil.cpu_times()
        self._t1 = time.time()
        self._stop.set()
        self._thread.join()

    def cpu(self) -> dict[str, float]:
        """CPU seconds used per name between start and end, over the processes alive at both
        (PostgreSQL's backends come and go with connections)."""
        end = self._cpu1 if self._cpu1 is not None else self._cpu_now()
        out = {}
        for name, now in end.items():
            before = self._cpu0.get(name, {})
            out[name] = round(sum(v - before[pid] for pid, v in now.items() if pid in before), 2)
        return out

    def busy_cores(self) -> float:
        """Cores the whole machine kept busy on average (ours and everyone else's)."""
        end = self._machine1 or psutil.cpu_times()
        t1 = self._t1 or time.time()
        busy = sum(
            getattr(end, f, 0.0) - getattr(self._machine0, f, 0.0)
            for f in ("user", "nice", "system", "irq", "softirq")
        )
        return round(busy / max(t1 - self.t0, 1e-9), 2)

    def seconds(self) -> float:
        return (self._t1 or time.time()) - self.t0

    def peak(self, name: str) -> float:
        return max((mb for _, n, mb in self.rss if n == name), default=0.0)

    def series(self, name: str) -> list[tuple[float, float]]:
        return [(round(t, 1), round(mb, 1)) for t, n, mb in self.rss if n == name]


def self_cpu() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)


def loadavg() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "load_avg": [round(x, 2) for x in loadavg()],
    }
