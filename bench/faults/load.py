"""The load: planned events with their one rightful recipient, clients that publish each until it is
acknowledged, and the recipients' feeds read back."""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.kit import Org, Samsyn

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


class Feeds:
    """Every organisation's feed, read incrementally with its cursor (as a recipient would)."""

    def __init__(self, samsyn: Samsyn, orgs: list[Org], errors: Errors) -> None:
        self.samsyn = samsyn
        self.orgs = orgs
        self.errors = errors
        self.http = httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))
        self.cursors: dict[str, str | None] = {o.id: None for o in orgs}
        self.copies: Counter[tuple[str, str]] = Counter()  # (event id, org) -> items

    def poll(self, only: set[str] | None = None) -> bool:
        """Read what is new in every feed (or in those of the organisations ``only`` names);
        False when the API did not answer (it may be down)."""
        for org in self.orgs if only is None else [o for o in self.orgs if o.id in only]:
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


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def split_plan(items: list[Planned], parts: int) -> list[list[Planned]]:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out
