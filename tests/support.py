"""Helpers for the integration tests: a real Samsyn process on the real stack, and a small
client that talks to it only through the public HTTP API (as an integrating system would)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx

from broker.demo.story import iso

REPO = Path(__file__).resolve().parents[1]
STACK_ENV = REPO / "var" / "stack" / "stack.env"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stack_env() -> dict[str, str]:
    """Start (or reuse) the real local stack and return its addresses. Never skips: a missing
    Kafka, OPA or PostgreSQL fails the test run."""
    subprocess.run([str(REPO / "deploy/local/stack.sh"), "up"], check=True)
    env = {}
    for line in STACK_ENV.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip()
    return env


def luhn_check(nine: str) -> int:
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a child process and wait for it; SIGKILL it if it has not exited in ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def new_postgres_database(stack: dict[str, str], name: str) -> str:
    """Create the empty database ``name`` on the stack's PostgreSQL cluster; its async URL."""
    import asyncpg

    base = stack["SAMSYN_TEST_POSTGRES_DSN"]

    async def create() -> None:
        conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return base.rsplit("/", 1)[0] + "/" + name


_ISSUED: set[str] = set()


def child(age: int) -> str:
    """A fictional child's number (serial 98x: a range no real person has) of the given age,
    never one issued before in this session: a test's "unknown child" must be unknown (the
    range holds only ~2,700 numbers per age, so random picks did meet)."""
    today = date.today()
    while True:
        born = today.replace(year=today.year - age) - timedelta(days=random.randint(30, 300))
        nine = born.strftime("%y%m%d") + f"98{random.randint(0, 9)}"
        number = born.strftime("%Y%m%d") + nine[6:] + str(luhn_check(nine))
        if number not in _ISSUED:
            _ISSUED.add(number)
            return number


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


@dataclass
class Samsyn:
    """A running Samsyn process (API + workers) and its admin credentials."""

    url: str
    admin_id: str
    admin_secret: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    _admin: tuple[str, float] | None = None

    def token(self, client_id: str, secret: str) -> str:
        r = self.http.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    @property
    def admin(self) -> str:
        """The admin's token, reused for a few minutes (the token endpoint is rate limited)."""
        if self._admin is None or time.monotonic() - self._admin[1] > 300:
            self._admin = (self.token(self.admin_id, self.admin_secret), time.monotonic())
        return self._admin[0]

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url + path, headers=headers, **kw)

    def org(
        self, kind: str, municipality: str | None = None, scopes: list[str] | None = None
    ) -> Org:
        """A fresh organisation with one client holding ``scopes`` (default: all but admin)."""
        oid = f"{kind.replace('_', '-')}-{uuid.uuid4().hex[:10]}"
        admin = self.admin
        r = self.call(
            "POST",
            "/v1/admin/organisations",
            admin,
            json={"id": oid, "name": oid, "kind": kind, "municipality": municipality},
        )
        assert r.status_code == 201, r.text
        r = self.call(
            "POST",
            "/v1/admin/clients",
            admin,
            json={
                "org": oid,
                "scopes": scopes
                or ["events:publish", "feed:read", "relationships:write", "consents:write"],
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return Org(
            self,
            oid,
            kind,
            body["client_id"],
            body["client_secret"],
            self.token(body["client_id"], body["client_secret"]),
        )

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)


@dataclass
class Org:
    samsyn: Samsyn
    id: str
    kind: str
    client_id: str
    secret: str
    token: str

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.samsyn.call(method, path, self.token, **kw)

    def relate(self, subject: str, role: str, **extra: Any) -> str:
        r = self.call(
            "POST",
            "/v1/relationships",
            json={"subject": subject, "role": role, "valid_from": iso(-30), **extra},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def consent(
        self,
        subject: str,
        scope: dict[str, Any],
        given_by: tuple[str, ...] = ("guardian",),
        valid_from: float = -1,
        valid_until: float = 180,
    ) -> str:
        r = self.call(
            "POST",
            "/v1/consents",
            json={
                "subject": subject,
                "given_by": [{"role": g} for g in given_by],
                "scope": scope,
                "valid_from": iso(valid_from),
                "valid_until": iso(valid_until),
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def envelope(
        self,
        subject: str,
        name: str,
        data: dict[str, Any],
        *,
        purpose: str,
        basis: str,
        consent: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        env = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"org/{self.id}",
            "type": f"se.backabarnet.{name}.v1",
            "time": iso(),
            "subject": subject,
            "datacontenttype": "application/json",
            "purpose": purpose,
            "legalbasis": basis,
            "data": data,
            **extra,
        }
        if consent:
            env["consentref"] = consent
        return env

    def publish(self, env: dict[str, Any], wait: bool = True) -> dict[str, Any]:
        r = self.call("POST", "/v1/events", json=env)
        assert r.status_code in (200, 202), r.text
        return self.wait_routed(env["id"]) if wait else dict(r.json())

    def wait_routed(self, event_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.call("GET", f"/v1/events/{event_id}")
            if r.status_code == 200 and r.json()["status"] == "routed":
                return dict(r.json())
            time.sleep(0.1)
        raise AssertionError(f"event {event_id} not routed within {timeout} s")

    def feed(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if after:
                params["after"] = after
            r = self.call("GET", "/v1/feed", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            items += page["items"]
            if not page["items"]:
                return items
            after = page["next"]

    def wait_feed(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        """The items of this organisation's feed that ``match``, once there is at least one."""
        return eventually(
            lambda: [i for i in self.feed() if match(i)], f"an item in {self.id}'s feed", timeout
        )

    def withdraw(self, consent_id: str) -> None:
        r = self.call("POST", f"/v1/consents/{consent_id}/withdraw")
        assert r.status_code == 200, r.text


@dataclass(frozen=True)
class Shared:
    """One child's consented attendance event from a school: student health receives it and
    reads its feed, the police (related, out of the consent's scope) is denied it."""

    barn: str
    event_id: str
    skola: Org
    eh: Org
    polis: Org


def shared_and_read(samsyn: Samsyn, municipality: str) -> Shared:
    barn = child(11)
    skola = samsyn.org("school", municipality)
    eh = samsyn.org("student_health", municipality)
    polis = samsyn.org("police")
    skola.relate(barn, "enrolled")
    eh.relate(barn, "enrolled")
    polis.relate(barn, "case_open")
    consent = skola.consent(
        barn,
        {
            "from_kinds": ["school"],
            "to_kinds": ["student_health"],
            "categories": ["attendance"],
            "purposes": ["early_support"],
        },
    )
    env = skola.envelope(
        barn,
        "attendance.flagged",
        {
            "period_start": "2026-09-01",
            "period_end": "2026-09-30",
            "absence_percent": 31.0,
            "unexcused_percent": 12.5,
        },
        purpose="early_support",
        basis="consent",
        consent=consent,
    )
    status = skola.publish(env)
    assert {r["org"]: r["shared"] for r in status["recipients"]} == {eh.id: True, polis.id: False}
    assert [i["event_id"] for i in eh.feed() if i["event_id"] == env["id"]] == [env["id"]]
    return Shared(barn, env["id"], skola, eh, polis)


def audit_for(
    samsyn: Samsyn,
    event_id: str | None,
    expected: int,
    action: str = "decision",
    timeout: float = 30,
    **match: Any,
) -> list[dict[str, Any]]:
    """The sealed ``action`` records about ``event_id`` (and with the ``match`` field values),
    once at least ``expected`` are sealed.

    Pages through ``GET /v1/audit/records`` with a fresh ``audit:read`` client; a partial last
    page is read again from its start until the records arrive (the chain only grows)."""
    auditor = samsyn.org("oversight", scopes=["audit:read"])
    found: dict[int, dict[str, Any]] = {}
    cursor: str | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        params: dict[str, Any] = {"action": action, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        r = auditor.call("GET", "/v1/audit/records", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        found.update(
            (i["seq"], i)
            for i in page["items"]
            if i["event_id"] == event_id and all(i[k] == v for k, v in match.items())
        )
        if len(found) >= expected:
            return [found[seq] for seq in sorted(found)]
        if page["items"]:
            cursor = page["next"]
        else:
            time.sleep(0.3)  # at the end of the trail: wait for the sealer
    raise AssertionError(f"{action} records for {event_id} not sealed within {timeout} s")


def start_samsyn(
    stack: dict[str, str],
    database_url: str,
    *,
    workers: str | None = None,
    extra_env: dict[str, str] | None = None,
    prefix: str | None = None,
    log_dir: Path | None = None,
    ready: bool = True,
) -> Samsyn:
    """Start ``samsyn serve`` as its own process (migrations, topics, API and workers) and wait
    until ``/readyz`` (or, with ``ready=False``, only ``/healthz``) answers 200; with
    ``ready=False`` no topics are created either, so Kafka may be away."""
    port = free_port()
    prefix = prefix or f"t{uuid.uuid4().hex[:8]}."
    admin_id, admin_secret = "test-admin", uuid.uuid4().hex
    env = {
        **os.environ,
        "SAMSYN_ENV": "test",
        "SAMSYN_DATABASE_URL": database_url,
        "SAMSYN_KAFKA_BOOTSTRAP": stack["SAMSYN_KAFKA_BOOTSTRAP"],
        "SAMSYN_OPA_URL": stack["SAMSYN_OPA_URL"],
        "SAMSYN_TOPIC_PREFIX": prefix,
        "SAMSYN_ISSUER": f"http://127.0.0.1:{port}",
        "SAMSYN_ADMIN_CLIENT_ID": admin_id,
        "SAMSYN_ADMIN_CLIENT_SECRET": admin_secret,
        "SAMSYN_AUDIT_CHECKPOINT_SECONDS": "1",
        **(extra_env or {}),
    }
    if workers is not None:
        env["SAMSYN_WORKERS"] = workers
    if ready:
        subprocess.run(
            [sys.executable, "-m", "broker.cli", "topics"],
            env=env,
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
    log_dir = log_dir or REPO / "var" / "test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"samsyn-{prefix.rstrip('.')}-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    s = Samsyn(f"http://127.0.0.1:{port}", admin_id, admin_secret, env, proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"samsyn exited: {log_path.read_text()[-3000:]}")
        try:
            if s.http.get(s.url + ("/readyz" if ready else "/healthz")).status_code == 200:
                return s
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    s.stop()
    raise RuntimeError(f"samsyn not ready: {log_path.read_text()[-3000:]}")


def start_worker(
    samsyn: Samsyn, *names: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A worker process (e.g. the router) beside a Samsyn API process, on the same settings
    plus ``extra_env`` (e.g. another SAMSYN_ROUTER_INSTANCE for a second router)."""
    assert samsyn.log_path is not None
    instance = (extra_env or {}).get("SAMSYN_ROUTER_INSTANCE")
    suffix = "-".join([*names, instance] if instance else names)
    log = samsyn.log_path.with_suffix(f".{suffix}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "worker", *names],
        env={**samsyn.env, **(extra_env or {})},
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


class PrivateServices:
    """``deploy/local/kafka.sh`` and ``postgres.sh`` under their own ``SAMSYN_VAR`` (other ports,
    other data), for tests that stop and restart them without touching the shared stack."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.env = {**os.environ, "SAMSYN_VAR": str(var)}

    def script(self, name: str, command: str) -> None:
        """Run ``deploy/local/<name>.sh <command>``; its output goes to ``<var>/<name>.out``."""
        self.var.mkdir(parents=True, exist_ok=True)
        out = self.var / f"{name}.out"
        with out.open("ab") as sink:
            done = subprocess.run(
                [str(REPO / "deploy" / "local" / f"{name}.sh"), command],
                env=self.env,
                cwd=REPO,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = out.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name}.sh {command} failed ({done.returncode}):\n{tail}")

    def stack_env(self) -> dict[str, str]:
        """The addresses the scripts wrote (SAMSYN_KAFKA_BOOTSTRAP, SAMSYN_TEST_POSTGRES_DSN)."""
        found: dict[str, str] = {}
        path = self.var / "stack" / "stack.env"
        for line in path.read_text().splitlines() if path.exists() else []:
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                found[key.strip()] = value.strip()
        return found

    def kafka_restart(self) -> None:
        """``kafka.sh restart``; Kafka must come back on the same address."""
        before = self.stack_env().get("SAMSYN_KAFKA_BOOTSTRAP")
        self.script("kafka", "restart")
        now = self.stack_env().get("SAMSYN_KAFKA_BOOTSTRAP")
        if now != before:
            raise RuntimeError(f"Kafka came back on {now}, not {before}")


class Opa:
    """A private OPA server on a fixed port, to stop and start in fault tests."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.binary = subprocess.run(
            [str(REPO / "deploy/local/install.sh"), "opa-path"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "run",
                "--server",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "error",
                str(REPO / "policies"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("private OPA did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True)
class Push:
    """One request a :class:`WebhookReceiver` got, and the status it answered."""

    headers: dict[str, str]
    body: bytes
    status: int


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 (a free port, its own thread) that stands in for an
    organisation's webhook endpoint: it answers the scripted statuses in turn, then 200, and
    keeps every request it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.pushes: list[Push] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.pushes.append(Push(dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/samsyn"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, match: Callable[[Push], bool], count: int, timeout: float = 60) -> list[Push]:
        """The pushes that ``match``, once there are at least ``count`` of them."""

        def found() -> list[Push]:
            with self.lock:
                pushes = [p for p in self.pushes if match(p)]
            return pushes if len(pushes) >= count else []

        return eventually(found, f"{count} pushes", timeout)


def signature_valid(secret: str, push: Push, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute ``Samsyn-Signature`` over the raw body with its secret
    (HMAC-SHA256 of ``"<t>." + body``) and refuse a timestamp outside the tolerance."""
    fields = dict(
        part.split("=", 1) for part in push.headers["Samsyn-Signature"].split(",") if "=" in part
    )
    t = fields.get("t", "")
    if not t.isdigit() or abs(time.time() - int(t)) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + push.body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields.get("v1", ""))
