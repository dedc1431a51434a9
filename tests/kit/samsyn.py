"""A running Samsyn and its callers: the process, organisations with their clients, and the
shared arrangements and audit look-ups that tests use."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from broker.config import READ_SIDE
from broker.demo.story import iso
from tests.kit.fictional import child
from tests.kit.stack import (
    REPO,
    free_port,
    listens,
    stop_process,
)
from tests.kit.waiting import eventually


@dataclass
class Samsyn:
    """A running Samsyn: the API process (with its workers), the read side's worker process
    when it has one (materializer and sealer, as deployed), and the admin credentials."""

    url: str
    admin_id: str
    admin_secret: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    read_side: subprocess.Popen[bytes] | None = None
    # The read side's /healthz, /readyz and /metrics (None when the API runs it, or nothing does).
    read_side_url: str | None = None
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
        stop_process(self.read_side, timeout=15)
        stop_process(self.proc, timeout=15)

    def metrics(self) -> str:
        """The Prometheus text of every Samsyn process here (the API's, then the read side's)."""
        urls = [self.url, *([self.read_side_url] if self.read_side_url else [])]
        return "".join(self.http.get(u + "/metrics").text for u in urls)


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
    read_side: bool | None = None,
    extra_env: dict[str, str] | None = None,
    prefix: str | None = None,
    log_dir: Path | None = None,
    ready: bool = True,
) -> Samsyn:
    """Start ``samsyn serve`` as its own process (migrations, topics, API and workers), then the
    read side (``samsyn worker materializer sealer``) beside it, as deployed, and wait until
    each ``/readyz`` (or, with ``ready=False``, only ``/healthz``) answers 200; with
    ``ready=False`` no topics are created either, so Kafka may be away.

    ``workers`` (SAMSYN_WORKERS, a JSON list) sets the API's workers; a test that sets it gets
    no read-side process unless it asks for one (``read_side=True``): it says what runs.

    Started again on new ports, up to twice, when another process took one of its ports first."""
    args = (stack, database_url, workers, read_side, extra_env, prefix, log_dir, ready)
    for _ in range(2):
        with contextlib.suppress(PortTaken):
            return _start_samsyn(*args)
    return _start_samsyn(*args)


class PortTaken(RuntimeError):
    """A process could not listen on its port: another took it after free_port() gave it."""


def _start_samsyn(
    stack: dict[str, str],
    database_url: str,
    workers: str | None,
    read_side: bool | None,
    extra_env: dict[str, str] | None,
    prefix: str | None,
    log_dir: Path | None,
    ready: bool,
) -> Samsyn:
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
        # Logs written as they happen: the last lines before a SIGKILL are what a fault test
        # needs (a file's block buffer would lose them).
        "PYTHONUNBUFFERED": "1",
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
    try:
        if not (read_side if read_side is not None else workers is None):
            _wait_up(s, proc, s.url, log_path, ready, time.monotonic() + 60)
            return s
        # The read side starts once the API answers at all (it has migrated the database and
        # made the development keys, which the worker reads); then both become ready together.
        _wait_up(s, proc, s.url, log_path, False, time.monotonic() + 60)
        probes = free_port()
        s.read_side_url = f"http://127.0.0.1:{probes}"
        s.read_side = start_worker(s, *READ_SIDE, extra_env={"SAMSYN_METRICS_PORT": str(probes)})
        deadline = time.monotonic() + 60
        _wait_up(s, proc, s.url, log_path, ready, deadline)
        worker_log = log_path.with_suffix(f".{'-'.join(READ_SIDE)}.log")
        _wait_up(s, s.read_side, s.read_side_url, worker_log, ready, deadline)
    except BaseException:
        s.stop()
        raise
    return s


def _wait_up(
    s: Samsyn, proc: subprocess.Popen[bytes], url: str, log_path: Path, ready: bool, deadline: float
) -> None:
    port = int(url.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = log_path.read_text()
            if "address already in use" in log:
                raise PortTaken(f"port {port} taken: {log[-1000:]}")
            raise RuntimeError(f"samsyn exited: {log[-3000:]}")
        try:
            answer = s.http.get(url + ("/readyz" if ready else "/healthz"))
            if answer.status_code == 200 and listens(proc.pid, port):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
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
