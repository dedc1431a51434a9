"""The fault suite (``make faults``): load through the public API while processes and
dependencies fail, then count what was acknowledged, delivered, duplicated, lost and disclosed.

Everything runs on a private stack so that parallel test sessions are not disturbed: a Kafka node
and a PostgreSQL cluster started by ``deploy/local/kafka.sh`` and ``postgres.sh`` with their own
``SAMSYN_VAR`` (other ports, other data), and an OPA of their own. Samsyn runs as two processes,
the API (with the materializer and the sealer) and the router, so each can be killed alone.

Fictional children are enrolled at a school and with student health in one of a few
municipalities; some also have an open police case. The load is two kinds of event whose one
rightful recipient is known beforehand:

- a mandatory report (from the school or student health) -> the municipality's social services;
- a consented attendance signal (from the school) -> student health.

The police, related to some children, is a candidate that must never receive either.

Clients retry every publish with the same event id until they get 200 or 202 (ids are
idempotency keys). Faults, one after the other, with recovery in between:

  api-kill       SIGKILL the API process (several times), restart it on the same port
  router-kill    SIGKILL the router process (several times), restart it
  kafka-restart  ``kafka.sh restart`` of the private node (several times: a client that does not
                 come back after one restart in several is the bug this looks for)
  opa-down       stop OPA for a while: nothing may be decided or disclosed meanwhile
  db-down        stop PostgreSQL under ingest: publishes get 503 and are retried

Counted per (event, recipient) after recovery: acknowledged, delivered (in the recipient's feed),
duplicated (more than one copy), lost (acknowledged, never delivered), delivered to anyone
else, disclosed while OPA was down (an allow decision timed inside the outage, or an event sent
after OPA stopped already in a feed before it came back), and 5xx: a 503 problem+json is the
designed answer to a dependency outage ("unavailable", counted apart); any other 5xx is a bug.

Every recovery must be done within a bound (``--bound``, 60 s): the run fails when one is not,
whatever the counts say (a router that hangs loses nothing, it only stops sharing).

The last line is the verdict (one line)::

    faults: sent N, acknowledged N, delivered N, duplicated D, lost L,
    disclosed while OPA down X, 5xx Y
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from broker.demo.story import fictional_child
from tests.support import REPO, Opa, Org, PrivateServices, Samsyn, start_samsyn, start_worker

MUNICIPALITIES = ("1460", "1438", "1439", "1461", "1492")  # Dalsland
SCOPES = ["events:publish", "feed:read", "relationships:write", "consents:write"]
ATTENDANCE_CONSENT = {
    "from_kinds": ["school"],
    "to_kinds": ["student_health"],
    "categories": ["attendance"],
    "purposes": ["early_support"],
}


def wall() -> datetime:
    return datetime.now(UTC)


# ---- the private stack ---------------------------------------------------------------------


class PrivateStack:
    """Kafka and PostgreSQL under their own ``SAMSYN_VAR``, and a private OPA."""

    def __init__(self, var: Path, log: Callable[[str], None]) -> None:
        self.var = var
        self.log = log
        self.services = PrivateServices(var)
        self.opa = Opa()
        self.kafka_bootstrap = ""
        self.postgres_dsn = ""

    def up(self) -> None:
        self.services.script("kafka", "start")
        self.services.script("postgres", "start")
        self.opa.start()
        env = self.services.stack_env()
        self.kafka_bootstrap = env["SAMSYN_KAFKA_BOOTSTRAP"]
        # The cluster's own database 'samsyn'; fresh, since the cluster is.
        self.postgres_dsn = env["SAMSYN_TEST_POSTGRES_DSN"].rsplit("/", 1)[0] + "/samsyn"

    def kafka_restart(self) -> None:
        self.services.kafka_restart()

    def postgres(self, command: str) -> None:
        self.services.script("postgres", command)

    def down(self, clean: bool) -> None:
        self.opa.stop()
        for name in ("kafka", "postgres"):
            with contextlib.suppress(Exception):
                self.services.script(name, "stop")
            if clean:
                with contextlib.suppress(Exception):
                    self.services.script(name, "clean")


# ---- what is published, and what became of it ----------------------------------------------


@dataclass
class Planned:
    """One event to publish, its source and the one organisation that should receive it."""

    env: dict[str, Any]
    source: Org
    recipient: str
    phase: str = ""
    released: float | None = None  # monotonic time it was handed to a sender
    first_sent: datetime | None = None
    acked: float | None = None
    acked_wall: datetime | None = None
    status: int | None = None
    attempts: int = 0

    @property
    def id(self) -> str:
        return str(self.env["id"])


@dataclass
class Tally:
    """Answers the clients got, for one phase."""

    requests: int = 0
    accepted: int = 0  # 202: first time
    repeated: int = 0  # 200: the same id again (its first attempt had gone through)
    unavailable: int = 0  # 503 problem+json: a dependency is down; retried
    server_errors: int = 0  # any other 5xx: a bug
    connection_errors: int = 0  # refused, reset, timed out: the process was away; retried
    throttled: int = 0  # 429; retried after Retry-After
    rejected: int = 0  # any other 4xx: a bug in this suite or the broker; not retried

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Recovery:
    """One fault injection and how long the system took to come back from it."""

    fault: str
    label: str
    down_s: float
    api_s: float | None  # fault end -> /readyz 200 (None: the API was not affected)
    routed_s: float | None  # fault end -> every event acknowledged until then delivered
    pending: int  # of those, not yet delivered when the API answered again


@dataclass
class Result:
    sent: int
    acknowledged: int
    delivered: int
    duplicated: int
    lost: int
    unexpected: int
    disclosed_while_opa_down: int
    server_errors: int
    unavailable: int
    not_routed: int
    audit_ok: bool
    recoveries: list[Recovery]
    tallies: dict[str, Tally]
    samples: list[str]
    bound_s: float = 60.0
    seconds: float = 0.0

    @property
    def slow(self) -> list[Recovery]:
        """Recoveries not done within the bound (or not at all)."""
        return [r for r in self.recoveries if r.routed_s is None or r.routed_s > self.bound_s]

    def last_line(self) -> str:
        return (
            f"faults: sent {self.sent}, acknowledged {self.acknowledged}, "
            f"delivered {self.delivered}, duplicated {self.duplicated}, lost {self.lost}, "
            f"disclosed while OPA down {self.disclosed_while_opa_down}, "
            f"5xx {self.server_errors}"
        )


class Errors:
    """5xx answers other than 503, wherever they came from, with a few samples."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.unavailable = 0
        self.samples: list[str] = []

    def note(self, where: str, r: httpx.Response) -> None:
        with self.lock:
            if r.status_code == 503:
                self.unavailable += 1
                return
            self.count += 1
            if len(self.samples) < 5:
                self.samples.append(f"{where}: {r.status_code} {r.text[:200]}")


# ---- the load generator ----------------------------------------------------------------------


class Load:
    """Sender threads that publish what is released to them, each retrying until 200/202."""

    def __init__(self, samsyn: Samsyn, senders: int, errors: Errors, give_up_s: float) -> None:
        self.samsyn = samsyn
        self.errors = errors
        self.give_up_s = give_up_s
        self.todo: queue.Queue[Planned | None] = queue.Queue()
        self.lock = threading.Lock()
        self.phase = "setup"
        self.tallies: dict[str, Tally] = {}
        self.acked: list[Planned] = []  # in order of acknowledgement
        self.abandoned: list[Planned] = []
        self.threads = [
            threading.Thread(target=self._sender, name=f"sender-{i}", daemon=True)
            for i in range(senders)
        ]
        for t in self.threads:
            t.start()

    def tally(self) -> Tally:
        return self.tallies.setdefault(self.phase, Tally())

    def release(self, events: list[Planned], seconds: float) -> threading.Thread:
        """Hand ``events`` to the senders evenly over ``seconds`` (in a thread of its own)."""

        def run() -> None:
            gap = seconds / max(len(events), 1)
            start = time.monotonic()
            for i, ev in enumerate(events):
                delay = start + i * gap - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                ev.phase = self.phase
                ev.released = time.monotonic()
                self.todo.put(ev)

        thread = threading.Thread(target=run, name="release", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask the senders to finish (they are daemons: one stuck in a retry does not block)."""
        for _ in self.threads:
            self.todo.put(None)
        deadline = time.monotonic() + 5
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))

    def _sender(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0)) as http:
            while True:
                ev = self.todo.get()
                if ev is None:
                    return
                self._publish(http, ev)

    def _publish(self, http: httpx.Client, ev: Planned) -> None:
        backoff = 0.1
        started = time.monotonic()
        while True:
            if time.monotonic() - started > self.give_up_s:
                with self.lock:
                    self.abandoned.append(ev)
                return
            if ev.first_sent is None:
                ev.first_sent = wall()
            ev.attempts += 1
            wait = backoff
            try:
                r = http.post(
                    f"{self.samsyn.url}/v1/events",
                    json=ev.env,
                    headers={"Authorization": f"Bearer {ev.source.token}"},
                )
            except httpx.TransportError:
                with self.lock:
                    self.tally().requests += 1
                    self.tally().connection_errors += 1
            else:
                with self.lock:
                    t = self.tally()
                    t.requests += 1
                    if r.status_code in (200, 202):
                        ev.acked, ev.acked_wall, ev.status = time.monotonic(), wall(), r.status_code
                        if r.status_code == 202:
                            t.accepted += 1
                        else:
                            t.repeated += 1
                        self.acked.append(ev)
                        return
                    if r.status_code == 503:
                        t.unavailable += 1
                    elif r.status_code >= 500:
                        t.server_errors += 1
                    elif r.status_code == 429:
                        t.throttled += 1
                        retry_after = r.headers.get("retry-after", "1")
                        wait = float(retry_after) if retry_after.isdigit() else 1.0
                    elif r.status_code == 401:
                        pass  # token expired: fetched again below
                    else:
                        t.rejected += 1
                if r.status_code >= 500:
                    self.errors.note("POST /v1/events", r)
                if r.status_code == 401:
                    with contextlib.suppress(Exception):
                        ev.source.token = self.samsyn.token(ev.source.client_id, ev.source.secret)
                elif 400 <= r.status_code < 500 and r.status_code != 429:
                    with self.lock:
                        self.abandoned.append(ev)
                        self.errors.samples.append(
                            f"rejected {ev.id}: {r.status_code} {r.text[:200]}"
                        )
                    return
            time.sleep(wait * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, 1.0)

    def acked_snapshot(self) -> list[Planned]:
        with self.lock:
            return list(self.acked)


# ---- reading the feeds --------------------------------------------------------------------


class Feeds:
    """Every organisation's feed, read incrementally with its cursor (as a recipient would)."""

    def __init__(self, samsyn: Samsyn, orgs: list[Org], errors: Errors) -> None:
        self.samsyn = samsyn
        self.orgs = orgs
        self.errors = errors
        self.http = httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))
        self.cursors: dict[str, str | None] = {o.id: None for o in orgs}
        self.copies: Counter[tuple[str, str]] = Counter()  # (event id, org) -> items

    def poll(self) -> bool:
        """Read what is new in every feed; False when the API did not answer (it may be down)."""
        for org in self.orgs:
            while True:
                params: dict[str, Any] = {"limit": 500}
                if self.cursors[org.id]:
                    params["after"] = self.cursors[org.id]
                try:
                    r = self.http.get(
                        f"{self.samsyn.url}/v1/feed",
                        params=params,
                        headers={"Authorization": f"Bearer {org.token}"},
                    )
                except httpx.TransportError:
                    return False
                if r.status_code == 401:
                    try:
                        org.token = self.samsyn.token(org.client_id, org.secret)
                    except (AssertionError, httpx.TransportError):
                        return False
                    continue
                if r.status_code != 200:
                    if r.status_code >= 500:
                        self.errors.note("GET /v1/feed", r)
                    return False
                page = r.json()
                for item in page["items"]:
                    if item.get("event_id"):
                        self.copies[(item["event_id"], org.id)] += 1
                self.cursors[org.id] = page["next"]
                if len(page["items"]) < 500:
                    break
        return True

    def missing(self, events: list[Planned]) -> list[Planned]:
        return [e for e in events if self.copies[(e.id, e.recipient)] == 0]


# ---- the suite ---------------------------------------------------------------------------


@dataclass
class Options:
    events: int = 3000
    senders: int = 16
    kills: int = 3
    kafka_restarts: int = 3
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


@dataclass
class World:
    samsyn: Samsyn
    router: subprocess.Popen[bytes]
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
        self.stack = PrivateStack(self.var, self.say)
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
        )
        router = start_worker(samsyn, "router")
        port = int(samsyn.url.rsplit(":", 1)[1])
        assert samsyn.proc is not None
        self.say(f"samsyn API on {samsyn.url} (pid {samsyn.proc.pid}), router pid {router.pid}")
        return self._population(samsyn, router, port)

    def _population(self, samsyn: Samsyn, router: subprocess.Popen[bytes], port: int) -> World:
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

        for batch in _chunks(list(enumerate(kids)), 16):
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
        return World(samsyn, router, port, orgs, auditor, planned)

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
    ) -> Recovery:
        """Wait until the API answers again (when ``api``) and every event acknowledged by then
        is in its recipient's feed; the times count from ``fault_end``."""
        deadline = fault_end + self.opts.recovery_timeout_s
        api_s: float | None = None
        if api:
            while not self.ready(w):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{fault} {label}: the API did not answer again")
                time.sleep(0.1)
            api_s = time.monotonic() - fault_end
        target = load.acked_snapshot()
        pending: int | None = None
        routed_s: float | None = None
        while time.monotonic() < deadline:
            if feeds.poll():
                left = len(feeds.missing(target))
                if pending is None:
                    pending = left
                if left == 0:
                    routed_s = time.monotonic() - fault_end
                    break
            time.sleep(0.25)
        rec = Recovery(fault, label, down_s, api_s, routed_s, pending or 0)
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
        w.router = start_worker(w.samsyn, "router")
        return time.monotonic() - started, False

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
        return (
            [Injection("baseline", "-", 3.0, None)]
            + [Injection("api-kill", f"{i}/{k}", 6.0, self.api_kill) for i in range(1, k + 1)]
            + [Injection("router-kill", f"{i}/{k}", 4.0, self.router_kill) for i in range(1, k + 1)]
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
            for inj, events in zip(plan, _split(w.planned, len(plan)), strict=True):
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
                with contextlib.suppress(Exception):
                    w.router.kill()
                    w.router.wait(10)
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
            self.recover(w, load, feeds, inj.fault, inj.label, down_s, end, api)
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


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _split(items: list[Planned], parts: int) -> list[list[Planned]]:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def report(result: Result) -> str:
    """The human-readable summary; its last line is the verdict."""
    lines = [
        "",
        f"{result.sent} events in {result.seconds:.0f} s; "
        "recovery per fault (seconds from the fault's end):",
    ]
    lines.append(
        f"  {'fault':<14} {'injection':<9} {'down s':>7} {'API answering s':>16} "
        f"{'all pending routed s':>21} {'pending':>8}"
    )
    for r in result.recoveries:
        api = f"{r.api_s:.1f}" if r.api_s is not None else "-"
        routed = f"{r.routed_s:.1f}" if r.routed_s is not None else "TIMEOUT"
        lines.append(
            f"  {r.fault:<14} {r.label:<9} {r.down_s:>7.1f} {api:>16} {routed:>21} {r.pending:>8}"
        )
    lines += ["", "client answers per phase (every publish retried with the same id):"]
    lines.append(
        f"  {'phase':<14} {'requests':>8} {'202':>6} {'200 rep':>7} {'503':>6} {'conn err':>8} "
        f"{'429':>5} {'5xx':>5} {'4xx':>5}"
    )
    for name, t in result.tallies.items():
        lines.append(
            f"  {name:<14} {t.requests:>8} {t.accepted:>6} {t.repeated:>7} {t.unavailable:>6} "
            f"{t.connection_errors:>8} {t.throttled:>5} {t.server_errors:>5} {t.rejected:>5}"
        )
    lines += [
        "",
        "503 problem+json is the designed answer while a dependency (Kafka, the database) is",
        f"down: counted as 'unavailable' ({result.unavailable}), not as 5xx; other 5xx are bugs.",
        f"delivered to an organisation the rules do not name: {result.unexpected}",
        f"acknowledged events whose source does not see them 'routed': {result.not_routed}",
        f"audit chain verifies: {'yes' if result.audit_ok else 'NO'}",
        f"recoveries not done within {result.bound_s:.0f} s: "
        + (", ".join(f"{r.fault} {r.label}" for r in result.slow) or "none"),
    ]
    lines += [f"sample: {s}" for s in result.samples]
    lines.append(result.last_line())
    return "\n".join(lines)


def run(opts: Options) -> Result:
    result = Suite(opts).run()
    print(report(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events to publish (3000)")
    parser.add_argument("--senders", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of the API and router (3)")
    parser.add_argument(
        "--kafka-restarts", type=int, default=3, help="restarts of the Kafka node (3)"
    )
    parser.add_argument(
        "--bound", type=float, default=60.0, help="fail when a recovery takes longer, s (60)"
    )
    parser.add_argument("--outage", type=float, default=8.0, help="OPA and database down, s (8)")
    parser.add_argument("--timeout", type=float, default=180.0, help="recovery timeout, s (180)")
    parser.add_argument("--pace", type=float, default=1.0, help="stretch the load over time (1)")
    parser.add_argument("--keep", action="store_true", help="keep the private stack and logs")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    # SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so the private stack stops.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    opts = Options(
        events=args.events,
        senders=args.senders,
        kills=args.kills,
        kafka_restarts=args.kafka_restarts,
        bound_s=args.bound,
        outage_s=args.outage,
        recovery_timeout_s=args.timeout,
        pace=args.pace,
        keep=args.keep,
    )
    result = run(opts)
    if args.json:
        args.json.write_text(json.dumps(_as_json(result), indent=2))
    bad = (
        result.slow
        or result.lost
        or result.duplicated
        or result.disclosed_while_opa_down
        or result.server_errors
        or result.unexpected
    )
    return 1 if bad else 0


def _as_json(result: Result) -> dict[str, Any]:
    return asdict(result)


if __name__ == "__main__":
    sys.exit(main())
