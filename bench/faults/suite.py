"""The faults, one after the other with recovery in between, and the counting after them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from bench.faults.load import (
    ATTENDANCE_CONSENT,
    MUNICIPALITIES,
    Errors,
    Feeds,
    Load,
    Planned,
    Tally,
    chunks,
    split_plan,
    wall,
)
from bench.faults.results import Recovery, Result, report
from bench.faults.stack import BROKERS, PrivateStack
from broker.demo.story import fictional_child
from broker.router.handover import client_id
from broker.router.loop import GROUP
from tests.kit import REPO, Org, Samsyn, start_samsyn, start_worker


@dataclass
class Options:
    events: int = 3000
    senders: int = 16
    kills: int = 3
    kafka_restarts: int = 3
    cluster: bool = True  # three brokers (kafka-cluster.sh), else one node (kafka.sh)
    broker_kills: int = 2  # on the cluster: SIGKILL a broker under load, then the next one
    bound_s: float = 60.0  # every recovery within this, or the run fails
    outage_s: float = 8.0
    recovery_timeout_s: float = 180.0
    pace: float = 1.0  # multiplies every phase's planned span (slower release)
    keep: bool = False
    var: Path | None = None


@dataclass(frozen=True)
class Injection:
    """One fault injection: ``act`` does the damage and undoes it (None: just load)."""

    fault: str
    label: str
    window: float
    act: Callable[[World, Load, Feeds], tuple[float, bool]] | None
    # Events acknowledged this long after the fault's end count too: for a fault that has no
    # end (a router gone for good), those that arrive meanwhile are what waits for recovery.
    watch_s: float = 0.0


@dataclass
class World:
    samsyn: Samsyn
    router: subprocess.Popen[bytes]  # router-1: SIGKILLed and restarted under its name
    standby: subprocess.Popen[bytes] | None  # router-2: beside it, until it dies for good
    port: int
    orgs: list[Org]
    auditor: Org
    planned: list[Planned]
    lines: list[str] = field(default_factory=list)


class Suite:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.t0 = time.monotonic()
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.var = opts.var or REPO / "var" / "faults" / run_id
        self.stack = PrivateStack(self.var, self.say, cluster=opts.cluster)
        self.errors = Errors()
        self.recoveries: list[Recovery] = []
        self.opa_window: tuple[datetime, datetime] | None = None
        self.seen_during_opa_outage: set[tuple[str, str]] = set()
        self.probe_http = httpx.Client(timeout=httpx.Timeout(3.0, connect=1.0))

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f}s] {message}", flush=True)

    # -- processes --------------------------------------------------------------------------

    def _spawn_api(self, w: World) -> None:
        """Start ``samsyn serve`` again with the same settings and port (so the issuer, and
        with it every client's token, stays valid)."""
        assert w.samsyn.log_path is not None
        w.samsyn.proc = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", "serve", "--port", str(w.port)],
            env=w.samsyn.env,
            cwd=REPO,
            stdout=w.samsyn.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def ready(self, w: World) -> bool:
        try:
            return self.probe_http.get(f"{w.samsyn.url}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    # -- setup ------------------------------------------------------------------------------

    def setup(self) -> World:
        self.say(f"private stack in {self.var}")
        self.stack.up()
        self.say(
            f"kafka {self.stack.kafka_bootstrap}, postgres {self.stack.postgres_dsn}, "
            f"opa {self.stack.opa.url}"
        )
        samsyn = start_samsyn(
            {
                "SAMSYN_KAFKA_BOOTSTRAP": self.stack.kafka_bootstrap,
                "SAMSYN_OPA_URL": self.stack.opa.url,
            },
            self.stack.postgres_dsn,
            workers='["materializer", "sealer"]',
            prefix="faults.",
            log_dir=self.var / "logs",
            extra_env={
                "SAMSYN_KAFKA_REPLICATION": str(self.stack.replication),
                # The API comes back under the same name (as a StatefulSet pod would): its
                # materializer and sealer take their partitions back at once (static members).
                "SAMSYN_WORKER_INSTANCE": "api-1",
            },
        )
        router, standby = (
            start_worker(samsyn, "router", extra_env={"SAMSYN_ROUTER_INSTANCE": name})
            for name in ("router-1", "router-2")
        )
        port = int(samsyn.url.rsplit(":", 1)[1])
        assert samsyn.proc is not None
        self.say(
            f"samsyn API on {samsyn.url} (pid {samsyn.proc.pid}), routers router-1 pid "
            f"{router.pid} and router-2 pid {standby.pid}"
        )
        return self._population(samsyn, router, standby, port)

    def _population(
        self,
        samsyn: Samsyn,
        router: subprocess.Popen[bytes],
        standby: subprocess.Popen[bytes],
        port: int,
    ) -> World:
        n = self.opts.events
        munis = MUNICIPALITIES[: 3 if n < 1000 else len(MUNICIPALITIES)]
        per_muni = {
            m: {
                kind: samsyn.org(kind, m)
                for kind in ("school", "student_health", "social_services")
            }
            for m in munis
        }
        police = samsyn.org("police")
        auditor = samsyn.org("oversight", scopes=["audit:read"])
        orgs = [o for by_kind in per_muni.values() for o in by_kind.values()] + [police]
        children = min(300, max(10, n // 10))
        self.say(
            f"{len(orgs)} organisations in {len(munis)} municipalities, {children} children, "
            f"{n} events"
        )

        numbers: set[str] = set()
        while len(numbers) < children:
            # Under 15, so the guardian's consent is the one the policy asks for.
            numbers.add(fictional_child(random.randint(6, 14)))
        kids = sorted(numbers)
        consents: dict[str, str] = {}
        lock = threading.Lock()

        def enrol(i: int, barn: str) -> None:
            m = per_muni[munis[i % len(munis)]]
            m["school"].relate(barn, "enrolled")
            m["student_health"].relate(barn, "enrolled")
            if i % 3 == 0:
                police.relate(barn, "case_open")
            consent = m["school"].consent(barn, ATTENDANCE_CONSENT)
            with lock:
                consents[barn] = consent

        for batch in chunks(list(enumerate(kids)), 16):
            threads = [threading.Thread(target=enrol, args=item) for item in batch]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if len(consents) != len(kids):
            raise RuntimeError("setup failed: not every child was enrolled")

        planned: list[Planned] = []
        for j in range(n):
            i = random.randrange(len(kids))
            barn = kids[i]
            m = per_muni[munis[i % len(munis)]]
            if j % 2 == 0:
                source = m["school"] if j % 4 == 0 else m["student_health"]
                env = source.envelope(
                    barn,
                    "mandatory.report",
                    {
                        "areas": ["omsorg"],
                        "urgency": "normal",
                        "description": "Fiktiv testanmälan (felsvit).",
                    },
                    purpose="mandatory_report",
                    basis="mandatory_report",
                )
                planned.append(Planned(env, source, m["social_services"].id))
            else:
                env = m["school"].envelope(
                    barn,
                    "attendance.flagged",
                    {
                        "period_start": "2026-09-01",
                        "period_end": "2026-09-30",
                        "absence_percent": round(random.uniform(10, 60), 1),
                    },
                    purpose="early_support",
                    basis="consent",
                    consent=consents[barn],
                )
                planned.append(Planned(env, m["school"], m["student_health"].id))
        return World(samsyn, router, standby, port, orgs, auditor, planned)

    # -- recovery ---------------------------------------------------------------------------

    def recover(
        self,
        w: World,
        load: Load,
        feeds: Feeds,
        fault: str,
        label: str,
        down_s: float,
        fault_end: float,
        api: bool,
        watch_s: float = 0.0,
    ) -> Recovery:
        """Wait until the API answers again (when ``api``) and every event acknowledged by then
        (and ``watch_s`` after ``fault_end``) is in its recipient's feed; the times count from
        ``fault_end``. The feeds are read one after another: the time of the last full read is
        kept with the figure (a delivery happened somewhere within it)."""
        deadline = fault_end + self.opts.recovery_timeout_s
        api_s: float | None = None
        if api:
            while not self.ready(w):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{fault} {label}: the API did not answer again")
                time.sleep(0.1)
            api_s = time.monotonic() - fault_end
        time.sleep(max(0.0, fault_end + watch_s - time.monotonic()))
        target = load.acked_snapshot()
        pending: int | None = None
        routed_s: float | None = None
        poll_s = 0.0
        waiting: set[str] | None = None  # after the first read, only feeds still waited on
        while time.monotonic() < deadline:
            polled = time.monotonic()
            if feeds.poll(waiting):
                poll_s = time.monotonic() - polled
                missing = feeds.missing(target)
                waiting = {e.recipient for e in missing}
                left = len(missing)
                if pending is None:
                    pending = left
                if left == 0:
                    routed_s = time.monotonic() - fault_end
                    break
            time.sleep(0.1 if watch_s else 0.25)
        rec = Recovery(fault, label, down_s, api_s, routed_s, pending or 0, poll_s)
        self.recoveries.append(rec)
        self.say(
            f"{fault} {label}: down {down_s:.1f} s; "
            + (f"API answering after {api_s:.1f} s; " if api_s is not None else "")
            + (
                f"all {len(target)} acknowledged events routed after {routed_s:.1f} s "
                f"({rec.pending} were pending)"
                if routed_s is not None
                else f"NOT all routed within {self.opts.recovery_timeout_s:.0f} s"
            )
        )
        return rec

    # -- the faults: each does its damage, undoes it and returns (seconds down, API hit) ------

    def api_kill(self, w: World, load: Load, feeds: Feeds) -> tuple[float, bool]:
        assert w.samsyn.proc is not None
        started = time.monotonic()
        w.samsyn.proc.send_signal(signal.SIGKILL)
        w.samsyn.proc.wait()
        time.sleep(0.5)  # clients meet a closed port for a moment
        self._spawn_api(w)
        return time.monotonic() - started, True

    def router_kill(self, w: World, load: Load, feeds: Feeds) -> tuple[float, bool]:
        started = time.monotonic()
        w.router.send_signal(signal.SIGKILL)
        w.router.wait()
        time.sleep(1.0)  # events pile up with no router
        w.router = start_worker(
            w.samsyn, "router", extra_env={"SAMSYN_ROUTER_INSTANCE": "router-1"}
        )
        return time.monotonic() - started, False

    def router_dies(self, w: World, load: Load, feeds: Feeds) -> tuple[float, bool]:
        """SIGKILL router-2 for good: router-1 must take its partitions over (within 3 s: the
        routers' group session, 1.5 s, and fencing its open transaction; README). First
        router-1, restarted by the router kills, must be back in the routers' group: on a
        loaded machine its process takes many seconds to start, and a router that is not
        there cannot take anything over (an earlier run killed router-2 before it was)."""
        assert w.standby is not None
        waited = time.monotonic()
        while self._routers_in_group(w) != {"router-1", "router-2"}:
            if time.monotonic() - waited > self.opts.recovery_timeout_s:
                raise RuntimeError("router-1 did not come back to the routers' group")
            time.sleep(0.5)
        self.say(f"router-dies: both routers in the group after {time.monotonic() - waited:.1f} s")
        w.standby.send_signal(signal.SIGKILL)
        w.standby.wait()
        w.standby = None
        return 0.0, False

    def _routers_in_group(self, w: World) -> set[str]:
        """The routers in the routers' consumer group with partitions, by their client ids."""

        async def describe() -> set[str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.kafka_bootstrap)
            await admin.start()
            try:
                [described] = await admin.describe_consumer_groups(
                    [w.samsyn.env["SAMSYN_TOPIC_PREFIX"] + GROUP]
                )
            finally:
                await admin.close()
            [group] = described.to_object()["groups"]
            if group["state"] != "Stable":
                return set()
            return {
                name
                for name in ("router-1", "router-2")
                for m in group["members"]
                if m["client_id"] == client_id(name) and m["member_assignment"]
            }

        try:
            return asyncio.run(describe())
        except Exception:  # Kafka busy: not known to be there yet
            return set()

    def broker_kill(self, node: int) -> Callable[[World, Load, Feeds], tuple[float, bool]]:
        """SIGKILL broker ``node`` under load; the other two go on (min.insync.replicas 2) while
        it is away for the outage; then it is started again and catches up."""

        def act(w: World, load: Load, feeds: Feeds) -> tuple[float, bool]:
            started = time.monotonic()
            self.stack.broker_kill(node)
            time.sleep(self.opts.outage_s)
            self.stack.broker_start(node)
            return time.monotonic() - started, True

        return act

    def kafka_restart(self, w: World, load: Load, feeds: Feeds) -> tuple[float, bool]:
        started = time.monotonic()
        self.stack.kafka_restart()
        return time.monotonic() - started, True

    def opa_down(self, w: World, load: Load, feeds: Feeds) -> tuple[float, bool]:
        started = time.monotonic()
        feeds.poll()
        before = set(feeds.copies)
        self.stack.opa.stop()
        stopped = wall()
        time.sleep(self.opts.outage_s)
        feeds.poll()
        # An item that appeared meanwhile for an event first sent after OPA stopped was decided
        # without OPA. (Items decided just before the stop may still arrive: not counted here;
        # the audit check in the verdict covers them by decision time.)
        by_id = {p.id: p for p in w.planned}
        for pair in set(feeds.copies) - before:
            ev = by_id.get(pair[0])
            if ev is not None and ev.first_sent is not None and ev.first_sent > stopped:
                self.seen_during_opa_outage.add(pair)
        self.opa_window = (stopped, wall())
        self.stack.opa.start()
        held = sum(1 for p in load.acked_snapshot() if p.acked_wall and p.acked_wall > stopped)
        self.say(
            f"opa-down: {held} events acknowledged while OPA was down; "
            f"{len(self.seen_during_opa_outage)} of them in a feed before OPA came back"
        )
        return time.monotonic() - started, True

    def db_down(self, w: World, load: Load, feeds: Feeds) -> tuple[float, bool]:
        started = time.monotonic()
        self.stack.postgres("stop")
        time.sleep(self.opts.outage_s)
        self.stack.postgres("start")
        return time.monotonic() - started, True

    # -- the run ----------------------------------------------------------------------------

    def plan(self) -> list[Injection]:
        """The faults in order; each injection gets its own slice of the events, released
        evenly over ``window`` seconds starting just before the damage."""
        k, outage, n = self.opts.kills, self.opts.outage_s, self.opts.kafka_restarts
        b = self.opts.broker_kills if self.opts.cluster else 0
        return (
            [Injection("baseline", "-", 3.0, None)]
            + [Injection("api-kill", f"{i}/{k}", 6.0, self.api_kill) for i in range(1, k + 1)]
            + [Injection("router-kill", f"{i}/{k}", 4.0, self.router_kill) for i in range(1, k + 1)]
            # Its events released over 2 s, dense enough that some land on the dead router's
            # partitions in the 1.5 s watched after the kill.
            + [Injection("router-dies", "1/1", 2.0, self.router_dies, watch_s=1.5)]
            + [
                Injection(
                    "broker-kill",
                    f"{i}/{b}",
                    outage + 4.0,
                    self.broker_kill(BROKERS[(i - 1) % len(BROKERS)]),
                )
                for i in range(1, b + 1)
            ]
            + [
                Injection("kafka-restart", f"{i}/{n}", 12.0, self.kafka_restart)
                for i in range(1, n + 1)
            ]
            + [
                Injection("opa-down", "1/1", outage + 3.0, self.opa_down),
                Injection("db-down", "1/1", outage + 3.0, self.db_down),
            ]
        )

    def run(self) -> Result:
        ok = False
        w: World | None = None
        load: Load | None = None
        try:
            w = self.setup()
            load = Load(w.samsyn, self.opts.senders, self.errors, self.opts.recovery_timeout_s)
            feeds = Feeds(w.samsyn, w.orgs, self.errors)
            plan = self.plan()
            for inj, events in zip(plan, split_plan(w.planned, len(plan)), strict=True):
                self._inject(w, load, feeds, inj, events)
            result = self._verdict(w, load, feeds)
            ok = (
                not result.slow
                and result.lost == 0
                and result.duplicated == 0
                and result.disclosed_while_opa_down == 0
                and result.server_errors == 0
                and result.unexpected == 0
                and result.acknowledged == result.sent
            )
            return result
        finally:
            self._teardown(w, load, clean=ok and not self.opts.keep)

    def _teardown(self, w: World | None, load: Load | None, clean: bool) -> None:
        """Stop what this run started, whatever failed before; remove it all after a clean run."""
        try:
            if load is not None:
                load.stop()
            if w is not None:
                for router in (w.router, w.standby):
                    with contextlib.suppress(Exception):
                        if router is not None:
                            router.kill()
                            router.wait(10)
                w.samsyn.stop()
        finally:
            self.stack.down(clean=clean)
            if clean:
                shutil.rmtree(self.var, ignore_errors=True)
            else:
                self.say(f"kept {self.var} (logs in {self.var / 'logs'})")

    def _inject(
        self, w: World, load: Load, feeds: Feeds, inj: Injection, events: list[Planned]
    ) -> None:
        if load.phase != inj.fault:
            self._tally_line(load)
            load.phase = inj.fault
        window = inj.window * self.opts.pace
        releaser = load.release(events, window)
        time.sleep(min(1.0, window / 4))  # some events in flight when the fault hits
        if inj.act is not None:
            down_s, api = inj.act(w, load, feeds)
            end = time.monotonic()
            self.recover(w, load, feeds, inj.fault, inj.label, down_s, end, api, inj.watch_s)
        releaser.join()
        # Recovery in between: the next fault starts once this slice is acknowledged and routed.
        deadline = time.monotonic() + self.opts.recovery_timeout_s
        while time.monotonic() < deadline:
            with load.lock:
                abandoned = {e.id for e in load.abandoned}
            if all(e.acked is not None or e.id in abandoned for e in events):
                break
            time.sleep(0.2)
        target = load.acked_snapshot()
        while time.monotonic() < deadline:
            if feeds.poll() and not feeds.missing(target):
                break
            time.sleep(0.25)

    def _tally_line(self, load: Load) -> None:
        t = load.tallies.get(load.phase)
        if t is None:
            return
        self.say(
            f"{load.phase}: requests {t.requests}, 202 {t.accepted}, 200 (repeat) {t.repeated}, "
            f"503 {t.unavailable}, connection errors {t.connection_errors}, 429 {t.throttled}, "
            f"other 5xx {t.server_errors}, 4xx {t.rejected}"
        )

    def _verdict(self, w: World, load: Load, feeds: Feeds) -> Result:
        self._tally_line(load)
        acked = load.acked_snapshot()
        deadline = time.monotonic() + self.opts.recovery_timeout_s
        while time.monotonic() < deadline:
            if feeds.poll() and not feeds.missing(acked):
                break
            time.sleep(0.5)
        time.sleep(3)  # late copies, if any, would show now
        feeds.poll()
        delivered = sum(1 for e in acked if feeds.copies[(e.id, e.recipient)] >= 1)
        duplicated = sum(max(0, feeds.copies[(e.id, e.recipient)] - 1) for e in acked)
        ours = {e.id: e for e in w.planned}
        unexpected = sum(
            n
            for (event_id, org), n in feeds.copies.items()
            if event_id in ours and ours[event_id].recipient != org
        )
        lost = len(acked) - delivered
        not_routed = self._not_routed(w, acked)
        disclosed = self._disclosed(w, delivered)
        audit_ok = self._audit_ok(w)
        tallies: dict[str, Tally] = dict(load.tallies)
        total = Tally()
        for t in tallies.values():
            total.add(t)
        tallies["all"] = total
        return Result(
            sent=len(w.planned),
            acknowledged=len({e.id for e in acked}),
            delivered=delivered,
            duplicated=duplicated,
            lost=lost,
            unexpected=unexpected,
            disclosed_while_opa_down=disclosed,
            server_errors=self.errors.count,
            unavailable=self.errors.unavailable,
            not_routed=not_routed,
            audit_ok=audit_ok,
            recoveries=self.recoveries,
            tallies=tallies,
            samples=self.errors.samples,
            bound_s=self.opts.bound_s,
            seconds=time.monotonic() - self.t0,
            broker_kills=sum(r.fault == "broker-kill" for r in self.recoveries),
            timeout_s=self.opts.recovery_timeout_s,
        )

    def _not_routed(self, w: World, acked: list[Planned]) -> int:
        """Ask the source of every acknowledged event where it went: each must say 'routed'."""
        bad: list[str] = []
        lock = threading.Lock()

        def check(part: list[Planned]) -> None:
            with httpx.Client(timeout=10) as http:
                for e in part:
                    r = http.get(
                        f"{w.samsyn.url}/v1/events/{e.id}",
                        headers={"Authorization": f"Bearer {e.source.token}"},
                    )
                    if r.status_code >= 500:
                        self.errors.note("GET /v1/events/{id}", r)
                    if r.status_code != 200 or r.json()["status"] != "routed":
                        with lock:
                            bad.append(e.id)

        parts = [acked[i::8] for i in range(8)]
        threads = [threading.Thread(target=check, args=(p,)) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.errors.samples += [f"not 'routed' by its source's account: {i}" for i in bad[:5]]
        return len(bad)

    def _audit_pages(self, w: World, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            query = {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            r = w.samsyn.call("GET", "/v1/audit/records", w.auditor.token, params=query)
            if r.status_code >= 500:
                self.errors.note("GET /v1/audit/records", r)
            r.raise_for_status()
            page = r.json()
            yield from page["items"]
            cursor = page["next"]
            if len(page["items"]) < 1000 or not cursor:
                return

    def _disclosed(self, w: World, delivered: int) -> int:
        """Allow decisions timed inside the OPA outage (from the sealed audit chain), plus any
        item seen in a feed during the outage for an event first sent after OPA stopped."""
        if self.opa_window is None:
            return 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the sealer has sealed every allow decision
            allows = sum(
                1 for _ in self._audit_pages(w, {"action": "decision", "outcome": "allow"})
            )
            if allows >= delivered:
                break
            time.sleep(1)
        start, end = self.opa_window
        window = {
            (rec["event_id"], rec["recipient_org"])
            for rec in self._audit_pages(
                w,
                {
                    "action": "decision",
                    "outcome": "allow",
                    "from": start.isoformat(),
                    "to": end.isoformat(),
                },
            )
        }
        if window:
            self.say(f"opa-down: {len(window)} allow decisions timed inside the outage")
        return len(window | self.seen_during_opa_outage)

    def _audit_ok(self, w: World) -> bool:
        r = w.samsyn.call("GET", "/v1/audit/verify", w.auditor.token, timeout=120)
        if r.status_code >= 500:
            self.errors.note("GET /v1/audit/verify", r)
        return r.status_code == 200 and bool(r.json().get("ok"))


def run(opts: Options) -> Result:
    result = Suite(opts).run()
    print(report(result), flush=True)
    return result
