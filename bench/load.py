"""Load: events through the HTTP API (closed loop at full speed, or open loop at a fixed rate),
records straight into ``events.v1``, and feed readers that see when deliveries become visible."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.scenario import World
from broker.config import Settings
from broker.demo.story import iso
from broker.infra.db import make_engine, make_sessionmaker
from broker.infra.kafka_writer import KafkaWriter
from broker.infra.keys import load_keys, subject_keys_of
from broker.privacy.keylog import KafkaKeyLog
from broker.privacy.payloads import Personal, event_ad, join_envelope, open_personal, seal_personal
from broker.records import IngestedEvent, decode_ingested, encode
from broker.web.cursors import encode_cursor


@dataclass
class Published:
    """What a publisher sent: per event id its (scheduled or actual) send time, and the answers."""

    sent: dict[str, float] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0
    request_s: list[float] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.statuses[202] + self.statuses[200]


def _session(connections: int) -> aiohttp.ClientSession:
    """Keep-alive connections for the load: aiohttp rather than httpx because its client costs
    a third of the CPU per request, and that CPU competes with the processes measured."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def _post(
    session: aiohttp.ClientSession, url: str, token: str, env: dict[str, Any], out: Published
) -> None:
    t = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for _ in range(20):  # 429 / 503 are answered with Retry-After: retry the same id
        try:
            async with session.post(f"{url}/v1/events", data=encode(env), headers=headers) as r:
                await r.read()
                status, retry_after = r.status, r.headers.get("Retry-After", "0.2")
        except (aiohttp.ClientError, TimeoutError):
            out.errors += 1
            await asyncio.sleep(0.2)
            continue
        out.statuses[status] += 1
        if status in (429, 503):
            await asyncio.sleep(float(retry_after))
            continue
        break
    out.request_s.append(time.perf_counter() - t)


async def publish_closed(url: str, world: World, n: int, concurrency: int) -> Published:
    """``n`` events as fast as ``concurrency`` clients that each wait for their answer can send."""
    out = Published()
    counter = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in counter:
            child = world.children[i % len(world.children)]
            school, env = world.envelope(child)
            out.sent[env["id"]] = time.time()
            await _post(session, url, school.token, env, out)

    async with _session(concurrency) as session:
        out.started = time.time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        out.finished = time.time()
    return out


BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
# What a batch's answer says of each event, counted as the single-event answer would be.
BATCH_STATUS = {"accepted": 202, "duplicate": 200, "rejected": 422}


async def publish_batches(
    url: str, world: World, n: int, concurrency: int, per_batch: int
) -> Published:
    """``n`` events in CloudEvents batches (``application/cloudevents-batch+json``) of up to
    ``per_batch`` events, each batch of one school's children, by ``concurrency`` clients that
    each wait for their answer."""
    out = Published()
    counter = iter(range(0, n, per_batch))

    async def worker(session: aiohttp.ClientSession) -> None:
        for first in counter:
            by_school: dict[str, tuple[str, list[dict[str, Any]]]] = {}
            for i in range(first, min(n, first + per_batch)):
                school, env = world.envelope(world.children[i % len(world.children)])
                by_school.setdefault(school.id, (school.token, []))[1].append(env)
            for token, envs in by_school.values():
                t = time.perf_counter()
                for env in envs:
                    out.sent[env["id"]] = time.time()
                await _post_batch(session, url, token, envs, out)
                out.request_s.append(time.perf_counter() - t)

    async with _session(concurrency) as session:
        out.started = time.time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        out.finished = time.time()
    return out


async def _post_batch(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    envs: list[dict[str, Any]],
    out: Published,
) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/cloudevents-batch+json",
    }
    for _ in range(20):  # 429 / 503 are answered with Retry-After: retry the same ids
        try:
            async with session.post(f"{url}/v1/events", data=encode(envs), headers=headers) as r:
                body = await r.read()
                status, retry_after = r.status, r.headers.get("Retry-After", "0.2")
        except (aiohttp.ClientError, TimeoutError):
            out.errors += 1
            await asyncio.sleep(0.2)
            continue
        if status in (429, 503):
            await asyncio.sleep(float(retry_after))
            continue
        if status != 200:
            out.statuses[status] += len(envs)
            return
        for result in json.loads(body):
            out.statuses[BATCH_STATUS.get(result["status"], 0)] += 1
        return
    out.errors += 1


async def publish_open(
    url: str, world: World, rate: float, seconds: float, in_flight: int = 128
) -> Published:
    """An open loop: event i is due at start + i/rate whether or not earlier ones are answered;
    its latency counts from that due time (a slow answer cannot hide queueing). At most
    ``in_flight`` requests are open at once; an event due while all are busy waits for one, and
    that wait counts too."""
    out = Published()
    n = int(rate * seconds)
    tasks: list[asyncio.Task[None]] = []
    async with _session(in_flight) as session:
        start = time.time() + 0.2
        out.started = start
        for i in range(n):
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            child = world.children[i % len(world.children)]
            school, env = world.envelope(child)
            out.sent[env["id"]] = due
            tasks.append(asyncio.create_task(_post(session, url, school.token, env, out)))
        await asyncio.gather(*tasks)
        out.finished = time.time()
    return out


class FeedReaders:
    """One reader per recipient organisation, paging its feed from a starting cursor without
    pause while items come and every ``idle_s`` when the feed is at its end; records when each
    (event, organisation) was first seen. Every read is a real, audited feed read."""

    def __init__(self, url: str, world: World, after_seq: int, idle_s: float = 0.02) -> None:
        self.url = url
        self.world = world
        self.after = encode_cursor(after_seq)
        self.idle_s = idle_s
        self.seen: dict[tuple[str, str], float] = {}
        self.requests = 0
        self.stopping = asyncio.Event()

    async def _read(self, session: aiohttp.ClientSession, org_id: str, token: str) -> None:
        after = self.after
        while not self.stopping.is_set():
            async with session.get(
                f"{self.url}/v1/feed",
                params={"after": after, "limit": "500"},
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                body = await r.read()
                status = r.status
            self.requests += 1
            now = time.time()
            if status != 200:
                await asyncio.sleep(0.1)
                continue
            page = json.loads(body)
            for item in page["items"]:
                if item.get("event_id"):
                    self.seen.setdefault((item["event_id"], org_id), now)
            after = page["next"] or after
            if not page["items"]:
                await asyncio.sleep(self.idle_s)

    async def run(self) -> None:
        async def reader(org_id: str, token: str) -> None:
            async with _session(1) as session:
                await self._read(session, org_id, token)

        await asyncio.gather(*(reader(org.id, org.token) for org in self.world.recipients))


class FeedWatcher:
    """Sees deliveries become visible in the read model without going through the API: every
    ``interval_s`` it asks the database for the feed items added since the last look (one
    indexed query on ``feed_items.seq``) and notes when each (event, organisation) first
    appeared. That moment is when a ``GET /v1/feed`` of the recipient would first return the
    item (the materializer's transaction has committed); unlike feed readers polling the API,
    it puts next to no load on the processes measured (a feed request costs the API ~1.5 ms
    CPU, and readers polling every few ms for five organisations would need a core)."""

    def __init__(self, database_url: str, after_seq: int, interval_s: float = 0.005) -> None:
        self.database_url = database_url
        self.after = after_seq
        self.interval_s = interval_s
        self.seen: dict[tuple[str, str], float] = {}
        self.queries = 0
        self.stopping = asyncio.Event()

    QUERY = "SELECT seq, event_id, org_id FROM feed_items WHERE seq > {} ORDER BY seq LIMIT 5000"

    async def run(self) -> None:
        if self.database_url.startswith("sqlite"):
            await self._run_sqlite()
            return
        import asyncpg

        # Never a sequential scan: the table's statistics lag its growth during a run, and with
        # them the planner chose to scan every row of it every 5 ms, about a third of a core
        # of PostgreSQL's CPU taken from the processes measured (docs/bench/journal.md, session 16).
        conn = await asyncpg.connect(
            self.database_url.replace("postgresql+asyncpg://", "postgresql://"),
            server_settings={"enable_seqscan": "off"},
        )
        try:
            query = self.QUERY.format("$1")
            while not self.stopping.is_set():
                rows = await conn.fetch(query, self.after)
                self._note([(r["seq"], r["event_id"], r["org_id"]) for r in rows])
                if len(rows) < 5000:
                    await asyncio.sleep(self.interval_s)
        finally:
            await conn.close()

    async def _run_sqlite(self) -> None:
        import sqlite3

        conn = sqlite3.connect(self.database_url.split("///", 1)[1], check_same_thread=False)
        try:
            query = self.QUERY.format("?")
            while not self.stopping.is_set():
                rows = await asyncio.to_thread(
                    lambda: conn.execute(query, (self.after,)).fetchall()
                )
                self._note([(r[0], r[1], r[2]) for r in rows])
                if len(rows) < 5000:
                    await asyncio.sleep(self.interval_s)
        finally:
            conn.close()

    def _note(self, rows: list[tuple[int, str | None, str]]) -> None:
        self.queries += 1
        now = time.time()
        for seq, event_id, org in rows:
            if event_id:
                self.seen.setdefault((event_id, org), now)
            self.after = max(self.after, seq)


# ------------------------------------------------------------------------------- Kafka
@dataclass(frozen=True)
class Template:
    """A warm-up event as ingest wrote it, with its sealed part opened and the child's key, so
    that copies under new ids can be sealed as ingest would seal them."""

    record: IngestedEvent
    personal: Personal
    key: AESGCM

    @property
    def envelope(self) -> dict[str, Any]:
        return join_envelope(self.record.envelope, self.personal)


async def read_templates(bootstrap: str, topic: str, database_url: str) -> list[Template]:
    """Every record now in ``topic`` (the warm-up events as ingest wrote them), opened with the
    deployment's keys (generated in its database, as in development)."""
    records = await _read_records(bootstrap, topic)
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        settings = Settings(database_url=database_url, env="test")
        # Only reads: its key log writer is never started; the deployment imported the log.
        log = KafkaKeyLog(KafkaWriter(settings))
        subject_keys = subject_keys_of(settings, sessions, await load_keys(settings, sessions), log)
        subject_keys.imported()
        keys = await subject_keys.for_reading({r.subject_pseudonym for r in records})
    finally:
        await engine.dispose()
    return [
        Template(
            r,
            open_personal(
                keys[r.subject_pseudonym], r.sealed, event_ad(r.source_org, r.envelope["id"])
            ),
            keys[r.subject_pseudonym],
        )
        for r in records
    ]


async def _read_records(bootstrap: str, topic: str) -> list[IngestedEvent]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        out: list[IngestedEvent] = []
        while not consumer.assignment():
            batch = await consumer.getmany(timeout_ms=200)
            out += [decode_ingested(r.value) for rs in batch.values() for r in rs if r.value]
        parts = sorted(consumer.assignment())
        ends = await consumer.end_offsets(parts)
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            out += [decode_ingested(r.value) for rs in batch.values() for r in rs if r.value]
        return out
    finally:
        await consumer.stop()


def _fresh(template: Template) -> IngestedEvent:
    """An ``events.v1`` record as ingest wrote ``template``, under a new event id (sealed anew:
    the event id is part of the ciphertext's associated data) and with the time of now, as the
    events sent through the API have (``bench.scenario.World.envelope``)."""
    event_id = str(uuid.uuid4())
    record = template.record
    return msgspec.structs.replace(
        record,
        envelope={**record.envelope, "id": event_id, "time": iso()},
        sealed=seal_personal(
            template.key, template.personal, event_ad(record.source_org, event_id)
        ),
    )


async def produce_open(
    bootstrap: str, topic: str, templates: list[Template], rate: float, seconds: float
) -> Published:
    """The open loop of :func:`publish_open`, straight into ``topic`` (ingest left out): record
    i, a template with a fresh event id, is sent at start + i/rate; its latency counts from
    then. ``request_s`` holds how long Kafka took to acknowledge each record."""
    out = Published()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()

    async def acked(fut: asyncio.Future[Any], t: float) -> None:
        await fut
        out.statuses[202] += 1
        out.request_s.append(time.perf_counter() - t)

    try:
        tasks = []
        out.started = start = time.time() + 0.2
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            record = _fresh(templates[i % len(templates)])
            out.sent[record.envelope["id"]] = due
            fut = await producer.send(topic, encode(record), key=record.subject_pseudonym.encode())
            tasks.append(asyncio.create_task(acked(fut, time.perf_counter())))
        await asyncio.gather(*tasks)
        out.finished = time.time()
    finally:
        await producer.stop()
    return out


async def produce_direct(bootstrap: str, topic: str, templates: list[Template], n: int) -> float:
    """``n`` records into ``topic`` as ingest writes them (same JSON, same key, idempotent
    acks=all producer), each a template with a fresh event id. Returns the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        pending: list[asyncio.Future[Any]] = []
        for i in range(n):
            record = _fresh(templates[i % len(templates)])
            pending.append(
                await producer.send(topic, encode(record), key=record.subject_pseudonym.encode())
            )
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - t0
