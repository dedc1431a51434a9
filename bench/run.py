"""``make bench``: throughput, overhead, latency, policy time and memory of the enforced pipeline
on the real local stack, at several sizes. See README "Benchmark" for what each figure means.

Per size N (a fresh deployment each: own topics, own database, API and router processes):

1. set-up through the API: organisations, the children's relationships and consents; a warm-up
   event of each type per child through the API, checked to be decided as the scenario says;
2. direct: N records straight into ``events.v1`` while the router is stopped, then the router is
   started and drains them (ingest cost left out); timed until every event is routed, every
   delivery is in the feeds and every decision is sealed in the audit chain;
3. pass-through: a plain aiokafka consume -> produce process over the same records;
4. HTTP: min(N, http max) events through ``POST /v1/events`` by concurrent clients (each waits
   for its answer), timed the same way;
5. latency: an open loop at fixed rates (500/s, then 100/s) through the API for some seconds:
   per event, from its due moment until it is visible in the feed of each of its recipients
   (a watcher on the read model's table; ``--latency-via api`` polls ``GET /v1/feed`` instead);
6. policy time per event by batch size with the router's own inputs.

Then OPA's server flags (GOGC, GOMAXPROCS, decision logging): OPA's CPU per event for each.
Writes var/bench/results.json and var/bench/bench.png; the last line of output is the summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from bench import load, policy, procs, report
from bench.procs import VAR, Deployment, PrivateOpa, Sampler, total
from bench.profile import PySpy, summary
from bench.scenario import EXPECTED_SHARED, World, build
from broker.config import Settings
from tests.kit import REPO, stack_env

AGE = "samsyn_router_event_age_seconds"
RECIPIENTS = 3  # allowed recipients per event in this scenario (the police is denied)
HTTP_BATCH = Settings().max_batch_events  # events per CloudEvents batch: the deployed bound
INPUTS: dict[int, dict[str, Any]] = {}  # policy inputs by batch size, from the last size run
OPA_VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("as deployed (GOGC=200, decision log dropped)", {}),
    ("GOGC=100 (Go's default)", {"env": {"GOGC": "100"}}),
    ("GOGC=400", {"env": {"GOGC": "400"}}),
    ("decision logging off", {"decision_log": False}),
    ("GOMAXPROCS=1", {"env": {"GOMAXPROCS": "1"}}),
]


@dataclass
class Config:
    sizes: list[int]
    http_max: int
    db: str
    children: int
    concurrency: int
    rates: list[float]
    latency_s: float
    latency_via: str
    opa_flags: bool
    policy: bool
    keep: bool
    profile: bool
    samsyn_env: dict[str, str]


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- measurement
@dataclass
class Snapshot:
    routed: float
    decisions: float
    allows: float
    materialised: float
    chain: float


def snapshot(dep: Deployment) -> Snapshot:
    r = dep.router_metrics()
    a = dep.read_side_metrics()
    return Snapshot(
        routed=total(r, "samsyn_events_routed_total"),
        decisions=total(r, "samsyn_decisions_total"),
        allows=total(r, "samsyn_decisions_total", outcome="allow"),
        materialised=total(a, "samsyn_deliveries_materialised_total"),
        chain=total(a, "samsyn_audit_chain_length"),
    )


def wait_pipeline(
    dep: Deployment, base: Snapshot, events: int, timeout: float, interval: float | None = None
) -> dict[str, Any]:
    """Poll until ``events`` more events are routed (router: transaction committed), their
    deliveries are in the feeds (materializer) and their decisions sealed (sealer). Returns the
    timeline and the moments each stage finished (wall-clock seconds)."""
    # Scrapes cost the processes measured a little: fewer of them in long runs.
    interval = interval or (0.25 if events <= 20_000 else 1.0)
    timeline: list[tuple[float, float, float, float]] = []
    last_idle = routed_done = all_done = None
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = time.time()
        s = snapshot(dep)
        routed = s.routed - base.routed
        timeline.append((now, routed, s.materialised - base.materialised, s.chain - base.chain))
        if routed == 0:
            last_idle = now  # the last look before routing began
        if routed_done is None and routed >= events:
            routed_done = now
        if routed_done is not None:
            want_mat = s.allows - base.allows
            want_chain = s.decisions - base.decisions
            if (
                s.materialised - base.materialised >= want_mat
                and s.chain - base.chain >= want_chain
            ):
                all_done = now
                return {
                    "timeline": timeline,
                    "last_idle": last_idle,
                    "routed_done": routed_done,
                    "all_done": all_done,
                    "decisions": s.decisions - base.decisions,
                    "allows": s.allows - base.allows,
                    "end": s,
                }
        time.sleep(interval)
    raise RuntimeError(f"pipeline not done within {timeout} s: last {timeline[-1:]}")


def quiesce(dep: Deployment, timeout: float = 900) -> float:
    """Wait until nothing moves (routed, materialised, sealed unchanged for a second): a run
    above capacity leaves a backlog whose routing and sealing would load the next run.
    Returns the seconds waited."""
    started = time.time()
    last, still = snapshot(dep), 0
    while time.time() - started < timeout:
        time.sleep(0.5)
        now = snapshot(dep)
        still = still + 1 if now == last else 0
        if still >= 2:
            break
        last = now
    return round(time.time() - started, 1)


def sustained(timeline: list[tuple[float, float, float, float]], n: int, col: int = 1) -> float:
    """Events/s between the moments 10 % and 90 % of ``n`` had passed the stage in ``col``."""
    lo = next((t for t, *v in timeline if v[col - 1] >= 0.1 * n), None)
    hi = next((t for t, *v in timeline if v[col - 1] >= 0.9 * n), None)
    if lo is None or hi is None or hi <= lo:
        return 0.0
    return 0.8 * n / (hi - lo)


def max_feed_seq(database_url: str) -> int:
    """The newest feed item's seq (a harness peek at the read model, so that the latency readers
    start at the end of the feeds instead of reading, and auditing, everything before)."""
    query = "SELECT coalesce(max(seq), 0) FROM feed_items"
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as conn:
            return int(conn.execute(query).fetchone()[0])

    async def get() -> int:
        import asyncpg

        conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return int(await conn.fetchval(query))
        finally:
            await conn.close()

    return asyncio.run(get())


# ------------------------------------------------------------------------------- phases
def warm_up(dep: Deployment, world: World, concurrency: int) -> dict[str, Any]:
    """One event of each type per child through the API; check the decisions of a few."""
    base = snapshot(dep)
    n = 2 * len(world.children)
    pub = asyncio.run(load.publish_closed(dep.api.url, world, n, concurrency))
    if pub.accepted != n:
        raise RuntimeError(f"warm-up: {pub.accepted} of {n} accepted ({dict(pub.statuses)})")
    done = wait_pipeline(dep, base, n, timeout=300)
    kinds = {o.id: o.kind for o in [*world.recipients, world.police]}
    school = next(iter(world.schools.values()))
    checked = 0
    for event_id in list(pub.sent)[:40]:
        r = school.samsyn.call("GET", f"/v1/events/{event_id}", school.token)
        if r.status_code == 404:
            continue  # another municipality's school sent it
        status = r.json()
        shared = {kinds[x["org"]]: x["shared"] for x in status["recipients"]}
        if status["status"] != "routed" or shared != EXPECTED_SHARED:
            raise RuntimeError(f"warm-up event {event_id} decided unexpectedly: {status}")
        checked += 1
    if not checked:
        raise RuntimeError("warm-up: no event could be checked")
    return {"events": n, "decisions_per_event": done["decisions"] / n}


def pipeline_phase(
    dep: Deployment,
    n: int,
    mode: str,
    world: World,
    templates: list[load.Template],
    concurrency: int,
    profile: bool = False,
) -> dict[str, Any]:
    """``direct``: preload ``n`` records with the router stopped, then start it and time the
    drain. ``http``: publish ``n`` events through the API with the router running."""
    bootstrap = dep.stack["SAMSYN_KAFKA_BOOTSTRAP"]
    topic = dep.prefix + "events.v1"
    extra: dict[str, Any] = {}
    if mode == "direct":
        dep.stop_router()
        log(f"  preloading {n} records into {topic}")
        produce_s = asyncio.run(load.produce_direct(bootstrap, topic, templates, n))
        extra["preload_s"] = round(produce_s, 1)
        base_read = dep.read_side_metrics()
        dep.start_router()
        router0: dict[str, float] = {}
        base = Snapshot(
            0.0,
            0.0,
            0.0,
            total(base_read, "samsyn_deliveries_materialised_total"),
            total(base_read, "samsyn_audit_chain_length"),
        )
        started = time.time()
    else:
        base = snapshot(dep)
        router0 = dep.router_metrics()
        started = time.time()
    api0, opa0 = dep.api_metrics(), dep.opa_queries()
    bench_cpu0 = procs.self_cpu()
    spy_dir = VAR / "profile" / f"{mode}-{n}"
    spied = {**dep.pids(), "bench": os.getpid()}
    spy = PySpy(spied, spy_dir) if profile else contextlib.nullcontext()
    with Sampler(sampled_processes(dep)) as sampler, spy:
        if mode in ("http", "http_batch"):
            if mode == "http":
                log(f"  publishing {n} events through the API ({concurrency} clients)")
                publishing = load.publish_closed(dep.api.url, world, n, concurrency)
            else:
                log(f"  publishing {n} events in batches of {HTTP_BATCH} ({concurrency} clients)")
                publishing = load.publish_batches(dep.api.url, world, n, concurrency, HTTP_BATCH)
            pub = asyncio.run(publishing)
            extra["accepted"] = pub.accepted
            extra["statuses"] = dict(pub.statuses)
            extra["ingest_per_s"] = round(pub.accepted / (pub.finished - pub.started), 1)
            extra["request_p50_ms"] = round(policy.quantile(pub.request_s, 0.5) * 1000, 1)
            extra["request_p99_ms"] = round(policy.quantile(pub.request_s, 0.99) * 1000, 1)
            started = pub.started
        done = wait_pipeline(dep, base, n, timeout=max(600, n / 50))
    bench_cpu = procs.self_cpu() - bench_cpu0
    # direct: from the last look at an idle router (it spent its start-up joining the group),
    # so the figure can only err low, by up to one polling interval.
    t0 = started if mode != "direct" or done["last_idle"] is None else done["last_idle"]
    e2e_s = done["all_done"] - t0
    routed_s = done["routed_done"] - t0
    cpu = sampler.cpu()
    cpu["bench"] = round(bench_cpu, 2)
    router1 = dep.router_metrics()
    batches = total(router1, "samsyn_router_batch_events_count") - total(
        router0, "samsyn_router_batch_events_count"
    )
    api1 = dep.api_metrics()
    admissions = {
        name: round(
            total(api1, f"samsyn_ingest_admission_{name}_total")
            - total(api0, f"samsyn_ingest_admission_{name}_total")
        )
        for name in ("remembered", "unanswered")
    }
    result = {
        "mode": mode,
        "events": n,
        "decisions": done["decisions"],
        "allows": done["allows"],
        "routed_per_s": round(n / routed_s, 1),
        "routed_sustained_per_s": round(sustained(done["timeline"], n), 1),
        "e2e_per_s": round(n / e2e_s, 1),
        "decisions_per_s": round(done["decisions"] / e2e_s, 1),
        "routed_s": round(routed_s, 1),
        "e2e_s": round(e2e_s, 1),
        "cpu_s": cpu,
        "load_avg_1m_end": round(procs.loadavg()[0], 2),
        "machine_busy_cores": sampler.busy_cores(),
        # what the rest of the machine (other users' processes) kept busy meanwhile
        "others_cores": round(sampler.busy_cores() - sum(cpu.values()) / sampler.seconds(), 2),
        "cpu_ms_per_event": {k: round(v / n * 1000, 3) for k, v in cpu.items()},
        "router_batches": batches,
        # every query the router and the API asked of OPA in the phase (OPA's own count)
        "opa_queries": round(dep.opa_queries() - opa0),
        "admissions": admissions,
        "router_stages": procs.stages(router0, router1),
        "policy_per_event_ms": policy_quantiles(router0, router1),
        "peak_rss_mb": {name: round(sampler.peak(name), 1) for name in procs.SAMSYN_PROCESSES},
        "rss_series": {name: sampler.series(name) for name in procs.SAMSYN_PROCESSES},
        "timeline": [(round(t - t0, 2), int(r), int(m), int(c)) for t, r, m, c in done["timeline"]][
            :: max(1, len(done["timeline"]) // 400)
        ],
        **extra,
    }
    if profile:
        result["profile"] = {name: summary(spy_dir / f"{name}.txt") for name in spied}
    log(
        f"  {mode}: routed {result['routed_per_s']}/s, end to end {result['e2e_per_s']}/s, "
        f"cpu {result['cpu_ms_per_event']}, router stages {result['router_stages']}, "
        f"router batches {batches}, OPA queries {result['opa_queries']}, admissions {admissions}"
    )
    return result


def passthrough_phase(dep: Deployment, records: int) -> dict[str, Any]:
    group = f"{dep.prefix}bench-passthrough-{uuid.uuid4().hex[:6]}"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.passthrough",
            "--bootstrap",
            dep.stack["SAMSYN_KAFKA_BOOTSTRAP"],
            "--source",
            dep.prefix + "events.v1",
            "--sink",
            dep.prefix + "bench.passthrough",
            "--group",
            group,
            "--records",
            str(records),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    log(f"  pass-through: {result['per_s']} records/s")
    return result


def sampled_processes(dep: Deployment) -> dict[str, list[int]]:
    """The processes whose CPU a phase counts: Samsyn's, the stack's and the private OPA."""
    sampled = {k: [v] for k, v in dep.pids().items()} | procs.stack_pids()
    sampled["opa"] = [dep.opa.proc.pid] if dep.opa.proc else []
    return sampled


def latency_phase(
    dep: Deployment,
    world: World,
    rate: float,
    seconds: float,
    via: str = "db",
    templates: list[load.Template] | None = None,
) -> dict[str, Any]:
    """Open loop through the API (or, given ``templates``, straight into ``events.v1``: the
    enforced pipeline without ingest); per event the time from its due moment until it was
    visible in the feed of each of its three recipients (the last of them counts). ``via`` db:
    a watcher on the read model's table (bench.load.FeedWatcher); api: feed readers polling
    ``GET /v1/feed`` for every recipient (bench.load.FeedReaders), audited reads included."""
    after = max_feed_seq(dep.database_url)
    readers: load.FeedWatcher | load.FeedReaders = (
        load.FeedWatcher(dep.database_url, after)
        if via == "db"
        else load.FeedReaders(dep.api.url, world, after)
    )
    router0 = dep.router_metrics()

    async def go() -> load.Published:
        reading = asyncio.create_task(readers.run())
        await asyncio.sleep(0.5)
        if templates is None:
            pub = await load.publish_open(dep.api.url, world, rate, seconds)
        else:
            pub = await load.produce_open(
                dep.stack["SAMSYN_KAFKA_BOOTSTRAP"],
                dep.prefix + "events.v1",
                templates,
                rate,
                seconds,
            )
        # Wait for the backlog (an offered rate above capacity leaves one) while it shrinks.
        last, progress = -1, time.time()
        while time.time() - progress < 30:
            seen = Counter(e for e, _ in readers.seen)
            missing = sum(1 for e in pub.sent if seen[e] < RECIPIENTS)
            if not missing:
                break
            if missing != last:
                last, progress = missing, time.time()
            await asyncio.sleep(0.2)
        readers.stopping.set()
        await reading
        return pub

    bench_cpu0 = procs.self_cpu()
    with Sampler(sampled_processes(dep)) as sampler:
        pub = asyncio.run(go())
    cpu = sampler.cpu()
    # the load generator and the watcher (or the feed readers) run in this process
    cpu["bench"] = round(procs.self_cpu() - bench_cpu0, 2)
    router1 = dep.router_metrics()
    by_event: dict[str, list[float]] = {}
    for (event_id, _org), seen_at in readers.seen.items():
        if event_id in pub.sent:
            by_event.setdefault(event_id, []).append(seen_at)
    complete = [max(v) - pub.sent[e] for e, v in by_event.items() if len(v) >= RECIPIENTS]
    last_visible = max((max(v) for v in by_event.values()), default=pub.started)
    first = [min(v) - pub.sent[e] for e, v in by_event.items()]
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": len(pub.sent),
        "accepted": pub.accepted,
        "offered_per_s": round(len(pub.sent) / (pub.finished - pub.started), 1),
        "events_complete": len(complete),
        # events over the time from the first due moment to the last visible one
        "achieved_per_s": round(len(complete) / max(last_visible - pub.started, 1e-9), 1),
        "p50_ms": round(policy.quantile(complete, 0.5) * 1000, 1),
        "p95_ms": round(policy.quantile(complete, 0.95) * 1000, 1),
        "p99_ms": round(policy.quantile(complete, 0.99) * 1000, 1),
        "max_ms": round(max(complete, default=0) * 1000, 1),
        "first_recipient_p50_ms": round(policy.quantile(first, 0.5) * 1000, 1),
        "request_p50_ms": round(policy.quantile(pub.request_s, 0.5) * 1000, 1),
        "request_p99_ms": round(policy.quantile(pub.request_s, 0.99) * 1000, 1),
        "method": via,
        "published": "api" if templates is None else "events.v1",
        "watch_queries": readers.queries if isinstance(readers, load.FeedWatcher) else 0,
        "feed_requests": readers.requests if isinstance(readers, load.FeedReaders) else 0,
        "policy_per_event": policy_quantiles(router0, router1),
        "router_stages": procs.stages(router0, router1),
        "router_event_age_p50_ms": {
            at: round((procs.hist_quantile(router0, router1, AGE, 0.5, at=at) or 0) * 1000, 1)
            for at in ("fetched", "committed")
        },
        "peak_rss_mb": {name: round(sampler.peak(name), 1) for name in procs.SAMSYN_PROCESSES},
        # per event sent; the pipeline's fixed costs per batch weigh more here than in the
        # throughput phases, whose batches are larger
        "cpu_ms_per_event": {k: round(v / max(1, len(pub.sent)) * 1000, 3) for k, v in cpu.items()},
        "machine_busy_cores": sampler.busy_cores(),
    }


def policy_quantiles(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Policy time per event (OPA query time of a batch / its events), p50 and p99 in ms, from
    the router's histogram samsyn_policy_seconds_per_event between two scrapes."""
    out = {}
    for label, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
        v = procs.hist_quantile(before, after, "samsyn_policy_seconds_per_event", q)
        out[label] = round(v * 1000, 3) if v is not None else 0.0
    return out


def opa_flags_phase(rounds: int = 3) -> dict[str, Any]:
    """Each variant as its own OPA process, asked the same queries (100 events, and 1 event)
    in interleaved rounds; the median of OPA's CPU and the client's wall time per event."""
    opas = []
    for i, (name, kw) in enumerate(OPA_VARIANTS):
        o = PrivateOpa(name=f"opa-variant-{i}", **kw)
        o.start()
        opas.append((name, o))
    got: dict[str, dict[str, list[float]]] = {name: {} for name, _ in opas}
    try:
        for _ in range(rounds):
            for name, o in opas:
                assert o.proc is not None
                for size, events in ((100, 2000), (1, 300)):
                    cpu, wall = asyncio.run(
                        policy.opa_cpu_per_event(o.url, o.proc.pid, INPUTS[size], events)
                    )
                    got[name].setdefault(f"cpu_ms_batch{size}", []).append(cpu)
                    got[name].setdefault(f"wall_ms_batch{size}", []).append(wall)
        out: dict[str, Any] = {}
        for name, o in opas:
            assert o.proc is not None
            out[name] = {k: round(statistics.median(v), 3) for k, v in got[name].items()}
            out[name]["rss_mb"] = round(psutil.Process(o.proc.pid).memory_info().rss / 1e6)
            log(f"  {name}: {out[name]}")
        return out
    finally:
        for _, o in opas:
            o.stop()


# ---------------------------------------------------------------------------------- sizes
def run_size(cfg: Config, stack: dict[str, str], opa: PrivateOpa, n: int) -> dict[str, Any]:
    tag = f"n{n}"
    database_url = procs.new_database(stack, cfg.db, tag)
    dep = Deployment(stack, opa, database_url, extra_env=cfg.samsyn_env)
    log(f"size {n}: starting Samsyn (API, router, read side) on {cfg.db}")
    dep.start()
    dep.database_url = database_url
    try:
        world = build(dep.api, cfg.children)
        log(f"  {cfg.children} children, {len(world.recipients) + 1} recipient organisations")
        warm = warm_up(dep, world, cfg.concurrency)
        templates = asyncio.run(
            load.read_templates(
                dep.stack["SAMSYN_KAFKA_BOOTSTRAP"], dep.prefix + "events.v1", database_url
            )
        )
        out: dict[str, Any] = {"size": n, "warm_up": warm}
        out["direct"] = pipeline_phase(
            dep, n, "direct", world, templates, cfg.concurrency, profile=cfg.profile
        )
        out["passthrough"] = passthrough_phase(dep, n + warm["events"])
        http_n = min(n, cfg.http_max)
        if http_n:
            out["http"] = pipeline_phase(
                dep, http_n, "http", world, templates, cfg.concurrency, profile=cfg.profile
            )
            out["http_batch"] = pipeline_phase(
                dep, http_n, "http_batch", world, templates, cfg.concurrency, profile=cfg.profile
            )
        if cfg.latency_s:
            out["latency_by_rate"] = {}
            for rate in cfg.rates:
                log(f"  latency: {rate:.0f}/s for {cfg.latency_s:.0f} s through the API")
                log(f"  (waited {quiesce(dep)} s for the pipeline to come to rest)")
                got = latency_phase(dep, world, rate, cfg.latency_s, cfg.latency_via)
                out["latency_by_rate"][f"{rate:.0f}"] = got
                log(
                    f"  latency at {rate:.0f}/s: p50 {got['p50_ms']} p95 {got['p95_ms']} p99 "
                    f"{got['p99_ms']} ms, {got['events_complete']} of {got['sent']} seen, "
                    f"policy {got['policy_per_event']}, router stages {got['router_stages']}, "
                    f"cpu {got['cpu_ms_per_event']}"
                )
            out["latency"] = out["latency_by_rate"][f"{cfg.rates[0]:.0f}"]
            out["latency_direct_by_rate"] = {}
            for rate in cfg.rates:
                log(f"  latency: {rate:.0f}/s for {cfg.latency_s:.0f} s straight into events.v1")
                log(f"  (waited {quiesce(dep)} s for the pipeline to come to rest)")
                got = latency_phase(dep, world, rate, cfg.latency_s, cfg.latency_via, templates)
                out["latency_direct_by_rate"][f"{rate:.0f}"] = got
                log(
                    f"  latency at {rate:.0f}/s (no ingest): p50 {got['p50_ms']} p95 "
                    f"{got['p95_ms']} p99 {got['p99_ms']} ms, {got['events_complete']} of "
                    f"{got['sent']} seen, router stages {got['router_stages']}, "
                    f"event age p50 {got['router_event_age_p50_ms']}, cpu {got['cpu_ms_per_event']}"
                )
        if cfg.policy:
            inputs = asyncio.run(policy.policy_inputs(database_url, templates, [1, 10, 100, 500]))
            out["policy"] = asyncio.run(policy.time_policy(opa.url, inputs))
            log(f"  policy per event: {out['policy']}")
            INPUTS.update(inputs)
            # The router's own input, for `opa bench` / `opa eval --profile` on the same query.
            (VAR / "policy-input-100.json").write_text(json.dumps(inputs[100]))
        return out
    finally:
        dep.stop()
        if not cfg.keep:
            procs.drop_database(stack, database_url)
            with contextlib.suppress(Exception):
                dep.delete_topics()


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default=env.get("BENCH_SIZES", "10000,100000,1000000"))
    p.add_argument("--http-max", type=int, default=int(env.get("BENCH_HTTP_MAX", "20000")))
    p.add_argument("--db", choices=["postgres", "sqlite"], default=env.get("BENCH_DB", "postgres"))
    p.add_argument("--children", type=int, default=int(env.get("BENCH_CHILDREN", "200")))
    p.add_argument("--concurrency", type=int, default=int(env.get("BENCH_CONCURRENCY", "16")))
    p.add_argument(
        "--rates",
        default=env.get("BENCH_RATES", "500,100"),
        help="offered rates of the latency runs; the first is the headline's",
    )
    p.add_argument(
        "--latency-via",
        choices=["db", "api"],
        default=env.get("BENCH_LATENCY_VIA", "db"),
        help="how visibility is seen: a watcher on the feed table, or feed readers on the API",
    )
    p.add_argument("--latency-s", type=float, default=float(env.get("BENCH_LATENCY_S", "30")))
    p.add_argument("--no-opa-flags", dest="opa_flags", action="store_false")
    p.add_argument("--no-policy", dest="policy", action="store_false")
    p.add_argument("--keep", action="store_true", help="keep the databases")
    p.add_argument(
        "--profile",
        action="store_true",
        default=env.get("BENCH_PROFILE", "") not in ("", "0"),
        help="py-spy the router and the API during the direct run",
    )
    p.add_argument(
        "--samsyn-env",
        action="append",
        default=[e for e in env.get("BENCH_SAMSYN_ENV", "").split() if e],
        help="KEY=VALUE for both Samsyn processes (repeatable), e.g. SAMSYN_ROUTER_BATCH_MAX=200",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="print the table, plot and summary of var/bench/results.json again",
    )
    a = p.parse_args(argv)
    if a.report_only:
        report.emit(json.loads((VAR / "results.json").read_text()), VAR)
        return 0
    cfg = Config(
        sizes=[int(s.replace("_", "")) for s in a.sizes.split(",") if s.strip()],
        http_max=a.http_max,
        db=a.db,
        children=a.children,
        concurrency=a.concurrency,
        rates=[float(r) for r in a.rates.split(",") if r.strip()],
        latency_via=a.latency_via,
        latency_s=a.latency_s,
        opa_flags=a.opa_flags,
        policy=a.policy,
        keep=a.keep,
        profile=a.profile,
        samsyn_env=dict(e.split("=", 1) for e in a.samsyn_env),
    )
    stack = stack_env()
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": procs.machine(),
        "config": cfg.__dict__,
        "sizes": [],
    }
    log(f"machine: {results['machine']}")
    opa = PrivateOpa()
    opa.start()
    VAR.mkdir(parents=True, exist_ok=True)
    try:
        for n in cfg.sizes:
            results["sizes"].append(run_size(cfg, stack, opa, n))
            (VAR / "results.json").write_text(json.dumps(results, indent=1))  # so far
    finally:
        opa.stop()
    if cfg.opa_flags and INPUTS:
        log("OPA server flags: CPU per event with the router's inputs")
        results["opa_flags"] = opa_flags_phase()
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["load_avg_end"] = [round(x, 2) for x in procs.loadavg()]
    VAR.mkdir(parents=True, exist_ok=True)
    (VAR / "results.json").write_text(json.dumps(results, indent=1))
    report.emit(results, VAR)
    return 0


if __name__ == "__main__":
    sys.exit(main())
