"""Privacy at rest on the real stack: no personnummer and no published free text in any Kafka
topic, database row or log line; erasure of one child; gallring; KEK rotation under load.

Every test here runs on a Samsyn of its own (own topics, database and log), so what is read raw
is exactly what that deployment wrote.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.config import Settings
from broker.demo import story as demo_story
from broker.demo.seed import seed
from broker.infra.db import make_engine, make_sessionmaker
from broker.infra.kafka_writer import KafkaWriter
from broker.infra.keys import load_keys, subject_keys_of
from broker.infra.topics import PARTITIONS
from broker.ingest.models import AcceptedEvent, EventRoute
from broker.privacy.aead import Unreadable
from broker.privacy.keylog import TICK, KafkaKeyLog
from broker.privacy.keyring import SubjectKeys
from broker.privacy.models import SubjectKey
from broker.privacy.payloads import event_ad, feed_ad, open_personal
from broker.records import (
    Delivery,
    IngestedEvent,
    decode_deliveries,
    decode_ingested,
    decode_wrapped_key,
)
from broker.subjects.personnummer import luhn_digit
from consumers.models import FeedItem
from tests.kit import (
    REPO,
    Org,
    Samsyn,
    child,
    eventually,
    new_postgres_database,
    read_to_end,
    start_samsyn,
)

pytestmark = pytest.mark.integration

SCENARIOS = Path(os.environ.get("SAMSYN_SCENARIOS", "/work/shared/scenarios"))
TOPICS = tuple(PARTITIONS)  # every topic `samsyn topics` creates, keys.v1 included
# A fictional child's number anywhere in text: 12 digits (or 10, perhaps with - or +), serial
# 980-999, not inside a longer run of digits or hex (hashes, pseudonyms).
NUMBER = re.compile(
    r"(?<![0-9a-fA-F])(?:(?:19|20)(\d{6})|(\d{6})[-+]?)(9[89]\d)(\d)(?![0-9a-fA-F])"
)


def personnummer_in(blob: str) -> set[str]:
    found = set()
    for m in NUMBER.finditer(blob):
        date = m.group(1) or m.group(2)
        if luhn_digit(date + m.group(3)) == int(m.group(4)):
            found.add(m.group(0))
    return found


def database_url_for(stack: dict[str, str], tmp: Path) -> str:
    if os.environ.get("SAMSYN_TEST_DB", "sqlite") == "postgres":
        return new_postgres_database(stack, f"samsyn_privacy_{uuid.uuid4().hex[:10]}")
    return f"sqlite+aiosqlite:///{tmp / 'privacy.db'}"


@pytest.fixture(scope="module")
def private(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samsyn]:
    tmp = tmp_path_factory.mktemp("privacy")
    s = start_samsyn(stack, database_url_for(stack, tmp), log_dir=tmp)
    yield s
    s.stop()


def settings_of(samsyn: Samsyn) -> Settings:
    """The deployment's settings as far as its keys go (its KEKs, or none: generated)."""
    env = samsyn.env
    keks: dict[str, Any] = {}
    if "SAMSYN_KEK_KEYS" in env:
        keks = {
            "kek_keys": json.loads(env["SAMSYN_KEK_KEYS"]),
            "kek_current_kid": env.get("SAMSYN_KEK_CURRENT_KID"),
        }
    return Settings(database_url=env["SAMSYN_DATABASE_URL"], env="test", **keks)


def raw_topics(samsyn: Samsyn) -> list[tuple[str, bytes | None, bytes | None]]:
    """Every record of the deployment's topics, from the beginning, committed or not."""
    prefix = samsyn.env["SAMSYN_TOPIC_PREFIX"]

    async def read() -> list[tuple[str, bytes | None, bytes | None]]:
        consumer = AIOKafkaConsumer(
            *(prefix + t for t in TOPICS),
            bootstrap_servers=samsyn.env["SAMSYN_KAFKA_BOOTSTRAP"],
            group_id=None,
            auto_offset_reset="earliest",
            isolation_level="read_uncommitted",
        )
        await consumer.start()
        try:
            found = await read_to_end(consumer)
        finally:
            await consumer.stop()
        return [(r.topic.removeprefix(prefix), r.key, r.value) for r in found]

    return asyncio.run(read())


def database_dump(samsyn: Samsyn) -> str:
    """Every row of every table, as text; for SQLite also the raw bytes of its files."""
    url = samsyn.env["SAMSYN_DATABASE_URL"]

    async def dump() -> str:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                meta = MetaData()
                await conn.run_sync(meta.reflect)
                rows = []
                for table in meta.sorted_tables:
                    result = await conn.execute(select(table))
                    rows += [f"{table.name}: {tuple(r)!r}" for r in result]
                return "\n".join(rows)
        finally:
            await engine.dispose()

    text_dump = asyncio.run(dump())
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for f in (path, path.with_name(path.name + "-wal")):
            if f.exists():
                text_dump += "\n" + f.read_bytes().decode("latin-1")
    return text_dump


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def free_text(data: dict[str, Any]) -> set[str]:
    """The free-text values of an event's data: strings with a space in them (notes,
    descriptions), long enough to be unmistakable."""
    return {s for s in strings_in(data) if " " in s and len(s) >= 12}


def test_no_personnummer_or_free_text_in_kafka_database_or_logs(
    private: Samsyn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the demo story and the shared scenarios, read every topic raw from the beginning,
    dump the database and read the run's log: no fictional child's number and none of the free
    text that was published appear anywhere."""
    published: list[dict[str, Any]] = []
    publish = demo_story.Story.publish

    def recording(
        self: demo_story.Story,
        org: str,
        subject: str,
        name: str,
        data: dict[str, Any],
        *a: Any,
        **kw: Any,
    ) -> str:
        published.append({"subject": subject, "data": data})
        return publish(self, org, subject, name, data, *a, **kw)

    monkeypatch.setattr(demo_story.Story, "publish", recording)
    clients = seed(
        private.url, (private.admin_id, private.admin_secret), tmp_path / "c.json", quiet=True
    )
    story = demo_story.play(private.url, clients, quiet=True)
    scenarios = subprocess.run(
        [sys.executable, str(SCENARIOS / "run.py"), str(SCENARIOS)],
        env={
            **os.environ,
            "SAMSYN_URL": private.url,
            "SAMSYN_ADMIN_CLIENT_ID": private.admin_id,
            "SAMSYN_ADMIN_CLIENT_SECRET": private.admin_secret,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert scenarios.returncode == 0, scenarios.stdout[-3000:] + scenarios.stderr[-3000:]
    for path in sorted(SCENARIOS.glob("*.json")):
        for step in json.loads(path.read_text())["steps"]:
            if "publish" in step:
                published.append({"data": step["publish"].get("data", {})})
    texts = set().union(*(free_text(p["data"]) for p in published))
    numbers = {p["subject"] for p in published if "subject" in p}
    # The test has teeth: free text was published, and the recipients read it in clear.
    assert len(texts) >= 5, texts
    received = json.dumps([step.received for step in story.results], ensure_ascii=False)
    assert any(t in received for t in texts)
    assert numbers <= personnummer_in(received)

    records = raw_topics(private)
    # Every topic but the dead letters, which hold nothing unless the policy faults.
    assert {topic for topic, _, _ in records} >= set(TOPICS) - {"events.dlq.v1"}
    places = {
        "kafka": "\n".join(
            (k or b"").decode("latin-1") + " " + (v or b"").decode("utf-8", "replace")
            for _, k, v in records
        ),
        "database": database_dump(private),
        "log": private.log_path.read_text(errors="replace") if private.log_path else "",
    }
    for place, blob in places.items():
        assert not personnummer_in(blob), (place, sorted(personnummer_in(blob))[:5])
        leaked = [t for t in texts if t in blob]
        assert not leaked, (place, leaked[:3])
    assert_keys_only_wrapped(private, [(k, v) for t, k, v in records if t == "keys.v1"])


def assert_keys_only_wrapped(
    samsyn: Samsyn, records: list[tuple[bytes | None, bytes | None]]
) -> None:
    """keys.v1 holds pseudonyms and KEK-wrapped keys, nothing else: each value is exactly the
    database's wrapped key of the child it is keyed by, and no data key appears in clear (raw
    or base64) in any record."""

    async def clear_keys() -> tuple[dict[str, bytes | None], list[bytes]]:
        engine = make_engine(samsyn.env["SAMSYN_DATABASE_URL"])
        try:
            sessions = make_sessionmaker(engine)
            keks = (await load_keys(settings_of(samsyn), sessions)).keks
            async with sessions() as session:
                rows = list((await session.execute(select(SubjectKey))).scalars())
            clear = [
                await keks.unwrap(r.kek_id, r.wrapped_key, context=r.pseudonym.encode())
                for r in rows
                if r.kek_id is not None and r.wrapped_key is not None
            ]
            return {r.pseudonym: r.wrapped_key for r in rows}, clear
        finally:
            await engine.dispose()

    wrapped, clear = asyncio.run(clear_keys())
    assert records
    assert clear
    latest: dict[str, bytes | None] = {}
    for key, value in records:
        assert key is not None
        pseudonym = key.decode()
        if pseudonym == TICK:
            assert value is None
            continue
        assert pseudonym in wrapped, pseudonym
        latest[pseudonym] = value
        for data_key in clear:
            assert data_key not in (value or b"")
            assert base64.b64encode(data_key) not in (value or b"")
    for pseudonym, value in latest.items():
        logged = None if value is None else decode_wrapped_key(value)
        assert logged is None or logged.pseudonym == pseudonym
        assert (logged and logged.wrapped_key) == wrapped[pseudonym], pseudonym


async def fresh_keys(samsyn: Samsyn) -> tuple[AsyncEngine, SubjectKeys]:
    """The deployment's key ring as a new process would build it (nothing cached)."""
    settings = settings_of(samsyn)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    # Only reads: its key log writer is never started; the deployment imported the log.
    log = KafkaKeyLog(KafkaWriter(settings))
    keys = subject_keys_of(settings, sessions, await load_keys(settings, sessions), log)
    keys.imported()
    return engine, keys


def open_raw(samsyn: Samsyn, pseudonyms: set[str]) -> dict[str, int]:
    """How many of the children's events and deliveries open, and how many not: each counted
    once, by its associated data (read uncommitted, a record of an aborted transaction and its
    retry are two copies of one delivery); one copy that does not open makes it unreadable."""
    ingested: list[IngestedEvent] = []
    deliveries: list[Delivery] = []
    for topic, _, value in raw_topics(samsyn):
        if topic == "events.v1" and value:
            e = decode_ingested(value)
            if e.subject_pseudonym in pseudonyms:
                ingested.append(e)
        elif topic == "deliveries.v1" and value:
            d = decode_deliveries(value)
            if isinstance(d, Delivery) and d.subject_pseudonym in pseudonyms:
                deliveries.append(d)

    async def count() -> dict[str, int]:
        engine, keyring = await fresh_keys(samsyn)
        try:
            keys = await keyring.for_reading(pseudonyms)
            readable: dict[bytes, bool] = {}
            sealed = [
                (e.subject_pseudonym, e.sealed, event_ad(e.source_org, e.envelope["id"]))
                for e in ingested
            ] + [(d.subject_pseudonym, d.sealed, feed_ad(d.delivery_id)) for d in deliveries]
            for pseudonym, ciphertext, ad in sealed:
                try:
                    open_personal(keys.get(pseudonym), ciphertext, ad)
                    readable.setdefault(ad, True)
                except Unreadable:
                    readable[ad] = False
            opened = sum(readable.values())
            return {"opened": opened, "unreadable": len(readable) - opened}
        finally:
            await engine.dispose()

    return asyncio.run(count())


def pseudonyms_of(samsyn: Samsyn, event_ids: list[str]) -> set[str]:
    found = set()
    for topic, _, value in raw_topics(samsyn):
        if topic == "events.v1" and value:
            e = decode_ingested(value)
            if e.envelope["id"] in event_ids:
                found.add(e.subject_pseudonym)
    return found


def report(school: Org, barn: str, description: str) -> dict[str, Any]:
    return school.envelope(
        barn,
        "mandatory.report",
        {"areas": ["trygghet"], "urgency": "normal", "description": description},
        purpose="mandatory_report",
        basis="mandatory_report",
    )


def test_shredding_a_child_leaves_nothing_readable_and_the_trail_intact(private: Samsyn) -> None:
    # A municipality of its own: the demo's social services would receive the reports too.
    skola = private.org("school", "2580")
    soc = private.org("social_services", "2580")
    auditor = private.org("oversight", scopes=["audit:read"])
    barn, other = child(9), child(9)
    events = {}
    for subject in (barn, other):
        soc.relate(subject, "case_open")
        env = report(skola, subject, f"Orolig för barnet {uuid.uuid4().hex[:6]} hemma")
        skola.publish(env)
        events[subject] = env["id"]
    mine = soc.wait_feed(lambda i: i["event_id"] == events[barn])
    assert mine[0]["subject"] == barn
    assert soc.call("GET", f"/v1/children/{barn}").status_code == 200

    def extract_with(*actions: str) -> list[dict[str, Any]] | None:
        """The child's extract once it holds ``actions`` (the sealer seals a moment later)."""
        r = auditor.call("GET", f"/v1/audit/subjects/{barn}/extract")
        entries: list[dict[str, Any]] = r.json()["entries"]
        return entries if set(actions) <= {e["action"] for e in entries} else None

    before = eventually(
        lambda: extract_with("decision", "feed.read", "child.read"), "the reads in the extract"
    )
    pseudonyms = pseudonyms_of(private, [events[barn]])
    # The event and its one delivery, both readable with the child's key.
    assert open_raw(private, pseudonyms) == {"opened": 2, "unreadable": 0}

    # Bad requests write nothing: no reason, no admin scope.
    path = f"/v1/admin/subjects/{barn}/shred"
    assert private.call("POST", path, private.admin, json={}).status_code == 422
    assert skola.call("POST", path, json={"reason": "felaktigt personnummer"}).status_code == 403
    assert soc.call("GET", f"/v1/children/{barn}").status_code == 200

    r = private.call("POST", path, private.admin, json={"reason": "Ärende 2026/117: fel barn"})
    assert r.status_code == 200, r.text
    assert r.json()["keys_destroyed"] == 1
    assert r.json()["accepted_events"] == 1

    # The API shows nothing of the child; the other child is untouched.
    assert not [i for i in soc.feed() if i["event_id"] == events[barn] or i["subject"] == barn]
    assert soc.call("GET", f"/v1/children/{barn}").status_code == 404
    assert skola.call("GET", f"/v1/events/{events[barn]}").status_code == 404
    assert soc.call("GET", f"/v1/children/{other}").status_code == 200
    # Its old Kafka records no longer decrypt, for any process.
    assert open_raw(private, pseudonyms) == {"opened": 0, "unreadable": 2}
    assert open_raw(private, pseudonyms_of(private, [events[other]]))["opened"] == 2
    # The audit trail verifies and the guardian's extract still lists the entries, and the erasure.
    after = eventually(lambda: extract_with("subject.shred"), "the erasure in the extract")
    assert [e for e in after if e["action"] != "subject.shred"][: len(before)] == before
    verdict = auditor.call("GET", "/v1/audit/verify").json()
    assert verdict["ok"], verdict
    export = auditor.call("GET", "/v1/audit/export")
    keys = auditor.call("GET", "/v1/audit/public-keys")
    (Path(private.log_path or ".").parent / "export.json").write_text(export.text)
    (Path(private.log_path or ".").parent / "keys.json").write_text(keys.text)
    offline = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "audit-verify",
            "--export",
            str(Path(private.log_path or ".").parent / "export.json"),
            "--public-keys",
            str(Path(private.log_path or ".").parent / "keys.json"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr


def samsyn_cli(samsyn: Samsyn, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "broker.cli", *args],
        env={**samsyn.env, **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def counts(samsyn: Samsyn) -> dict[str, int]:
    async def run() -> dict[str, int]:
        engine = make_engine(samsyn.env["SAMSYN_DATABASE_URL"])
        try:
            async with engine.connect() as conn:
                tables = {
                    "feed_items": select(func.count()).select_from(FeedItem),
                    "accepted_events": select(func.count()).select_from(AcceptedEvent),
                    "event_routes": select(func.count()).select_from(EventRoute),
                    "live_keys": select(func.count())
                    .select_from(SubjectKey)
                    .where(SubjectKey.wrapped_key.is_not(None)),
                }
                return {name: (await conn.execute(q)).scalar_one() for name, q in tables.items()}
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_gallring_removes_the_expired_and_destroys_the_keys_of_children_with_nothing_left(
    private: Samsyn,
) -> None:
    """With a retention shortened to nothing for read deliveries, ended consents and accepted
    events: a dry run changes nothing and reports what the run then removes; the child whose
    relationship has ended loses its key, a child still related keeps it, an unread delivery
    stays."""
    # A municipality of its own: the demo's social services would receive the reports too.
    skola = private.org("school", "2581")
    soc = private.org("social_services", "2581")
    gone, kept = child(8), child(8)
    rel = soc.relate(gone, "case_open")
    soc.relate(kept, "case_open")
    env_gone = report(skola, gone, "Gallras efter läsning, inget kvar")
    env_kept = report(skola, kept, "Oläst anmälan som ska stanna kvar")
    skola.publish(env_gone)
    skola.publish(env_kept)
    read = [i for i in soc.feed() if i["event_id"] in (env_gone["id"], env_kept["id"])]
    assert len(read) == 2
    # A later delivery to the same recipient, not yet read: it stays.
    unread = report(skola, kept, "Ytterligare anmälan, ännu oläst")
    skola.publish(unread)
    r = soc.call("POST", f"/v1/relationships/{rel}/end")
    assert r.status_code == 200, r.text
    retention = {
        "SAMSYN_GALLRING_AFTER_READ": "PT0S",
        "SAMSYN_GALLRING_ACCEPTED_EVENT": "PT0S",
        "SAMSYN_GALLRING_KEY_GRACE": "PT0S",
    }
    before = counts(private)
    dry = samsyn_cli(private, "gallring", "--dry-run", env=retention)
    assert counts(private) == before
    gone_pseudonyms = pseudonyms_of(private, [env_gone["id"]])
    kept_pseudonyms = pseudonyms_of(private, [env_kept["id"]])
    assert gone_pseudonyms <= set(dry["pseudonyms"])
    assert not kept_pseudonyms & set(dry["pseudonyms"])
    done = samsyn_cli(private, "gallring", env=retention)
    assert {k: v for k, v in done.items() if k != "dry_run"} == {
        k: v for k, v in dry.items() if k != "dry_run"
    }
    after = counts(private)
    assert after["feed_items"] == before["feed_items"] - done["deliveries"] - done["notices"]
    assert after["accepted_events"] == before["accepted_events"] - done["accepted_events"]
    assert after["live_keys"] == before["live_keys"] - done["keys_destroyed"]
    left = soc.feed()
    assert [i["event_id"] for i in left if i["event_id"] == unread["id"]] == [unread["id"]]
    assert not [i for i in left if i["event_id"] in (env_gone["id"], env_kept["id"])]
    assert open_raw(private, gone_pseudonyms)["opened"] == 0
    assert open_raw(private, kept_pseudonyms)["unreadable"] == 0
    # The run is in the audit trail: counts, and the pseudonyms of the destroyed keys.
    auditor = private.org("oversight", scopes=["audit:read"])
    destroyed = eventually(
        lambda: auditor.call(
            "GET", "/v1/audit/records", params={"action": "subject_key.destroyed", "limit": 1000}
        ).json()["items"],
        "sealed key destructions",
    )
    assert gone_pseudonyms <= {r["subject_pseudonym"] for r in destroyed}
    assert samsyn_cli(private, "gallring", "--dry-run", env=retention)["keys_destroyed"] == 0


def test_kek_rotation_rewraps_every_key_while_events_flow(
    stack: dict[str, str], tmp_path: Path
) -> None:
    """A deployment on KEK k1 gets k2 as current; `samsyn rotate-kek` runs while events keep
    coming; with k1 removed afterwards every event is delivered and every record opens."""
    b64 = {kid: base64.b64encode(os.urandom(32)).decode() for kid in ("k1", "k2")}
    url = database_url_for(stack, tmp_path)
    prefix = f"t{uuid.uuid4().hex[:8]}."

    def start(keks: dict[str, str], current: str) -> Samsyn:
        return start_samsyn(
            stack,
            url,
            prefix=prefix,
            log_dir=tmp_path,
            extra_env={"SAMSYN_KEK_KEYS": json.dumps(keks), "SAMSYN_KEK_CURRENT_KID": current},
        )

    first = start({"k1": b64["k1"]}, "k1")
    try:
        skola = first.org("school", "1462")
        soc = first.org("social_services", "1462")
        sent = []
        for _ in range(10):
            barn = child(7)
            env = report(skola, barn, "Före rotationen")
            skola.publish(env, wait=False)
            sent.append(env["id"])
    finally:
        first.stop()
    second = start({"k1": b64["k1"], "k2": b64["k2"]}, "k2")
    try:
        skola.samsyn = soc.samsyn = second
        skola.token = second.token(skola.client_id, skola.secret)
        soc.token = second.token(soc.client_id, soc.secret)
        stop = threading.Event()

        def publish_while_rotating() -> None:
            while not stop.is_set() and len(sent) < 300:
                env = report(skola, child(7), "Under rotationen")
                skola.publish(env, wait=False)
                sent.append(env["id"])

        flow = threading.Thread(target=publish_while_rotating)
        flow.start()
        try:
            rewrapped = samsyn_cli(second, "rotate-kek")
        finally:
            stop.set()
            flow.join()
        assert rewrapped["rewrapped"] >= 10
        assert samsyn_cli(second, "rotate-kek")["rewrapped"] == 0
    finally:
        second.stop()
    third = start({"k2": b64["k2"]}, "k2")
    try:
        soc.samsyn = skola.samsyn = third
        soc.token = third.token(soc.client_id, soc.secret)
        eventually(
            lambda: {i["event_id"] for i in soc.feed()} >= set(sent),
            "every event delivered",
            timeout=120,
        )

        async def kek_ids() -> set[str | None]:
            engine = make_engine(url)
            try:
                async with make_sessionmaker(engine)() as session:
                    return set((await session.execute(select(SubjectKey.kek_id))).scalars())
            finally:
                await engine.dispose()

        assert asyncio.run(kek_ids()) == {"k2"}
        tally = open_raw(third, pseudonyms_of(third, sent))
        assert tally["unreadable"] == 0
        assert tally["opened"] == 2 * len(sent)
    finally:
        third.stop()
