"""Production's Kafka shape: three brokers, replication factor 3, min.insync.replicas 2.

Under a steady load through the API, the broker leading the events partition is SIGKILLed and
restarted, then the one leading the audit partition: every acknowledged event reaches its one
rightful recipient exactly once, the audit chain verifies, and no answer is a 5xx other than the
503 of real unavailability.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.support import REPO, Org, child, new_postgres_database, start_samsyn

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

SCRIPT = REPO / "deploy/local/kafka-cluster.sh"
EVENTS = 240
RATE_PER_S = 8.0  # per publisher; two publishers


@dataclass
class Cluster:
    env: dict[str, str]
    bootstrap: str

    def run(self, *args: str) -> None:
        subprocess.run([str(SCRIPT), *args], env=self.env, check=True, capture_output=True)

    def leader(self, topic: str) -> int:
        """The node id that leads partition 0 of ``topic`` now."""

        async def ask() -> int:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                (described,) = await admin.describe_topics([topic])
                return int(
                    next(p["leader"] for p in described["partitions"] if p["partition"] == 0)
                )
            finally:
                await admin.close()

        return asyncio.run(ask())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = {**os.environ, "SAMSYN_VAR": str(tmp_path_factory.mktemp("kafka-cluster"))}
    c = Cluster(env, "")
    c.run("start")
    c.bootstrap = subprocess.run(
        [str(SCRIPT), "bootstrap"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    yield c
    c.run("stop")


@dataclass
class Tally:
    acknowledged: set[str] = field(default_factory=set)
    answers: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def publish_all(school: Org, envelopes: list[dict[str, object]], tally: Tally) -> None:
    """Publish at a steady pace; retry each event with the same id until 200/202."""
    with httpx.Client(timeout=30) as http:
        for env in envelopes:
            started = time.monotonic()
            while True:
                try:
                    r = http.post(
                        school.samsyn.url + "/v1/events",
                        json=env,
                        headers={"Authorization": f"Bearer {school.token}"},
                    )
                    status = r.status_code
                except httpx.TransportError:
                    status = 0
                with tally.lock:
                    tally.answers[status] += 1
                    if status in (200, 202):
                        tally.acknowledged.add(str(env["id"]))
                if status in (200, 202):
                    break
                assert status in (0, 503), f"unexpected answer {status}"
                time.sleep(0.5)
            time.sleep(max(0.0, 1 / RATE_PER_S - (time.monotonic() - started)))


def test_broker_kills_under_load_lose_and_duplicate_nothing(
    stack: dict[str, str], cluster: Cluster, tmp_path: Path
) -> None:
    """Kill the events leader, restart it, kill the audit leader, restart it, all under load:
    every acknowledged event delivered exactly once, chain intact, no 5xx beyond 503."""
    if os.environ.get("SAMSYN_TEST_DB", "sqlite") == "postgres":
        database_url = new_postgres_database(stack, f"samsyn_cluster_{uuid.uuid4().hex[:8]}")
    else:
        database_url = f"sqlite+aiosqlite:///{tmp_path}/cluster.db"
    prefix = f"c{uuid.uuid4().hex[:8]}."
    samsyn = start_samsyn(
        {**stack, "SAMSYN_KAFKA_BOOTSTRAP": cluster.bootstrap},
        database_url,
        prefix=prefix,
        extra_env={"SAMSYN_KAFKA_REPLICATION": "3"},
    )
    try:
        school, social = samsyn.org("school", "1460"), samsyn.org("social_services", "1460")
        envelopes = [
            school.envelope(
                child(9),
                "mandatory.report",
                {"areas": ["trygghet"], "urgency": "normal", "description": "Fiktiv anmälan."},
                purpose="mandatory_report",
                basis="mandatory_report",
            )
            for _ in range(EVENTS)
        ]
        tally = Tally()
        publishers = [
            threading.Thread(target=publish_all, args=(school, envelopes[i::2], tally))
            for i in range(2)
        ]
        for p in publishers:
            p.start()

        kills = []
        for topic in ("events.v1", "audit.v1"):
            time.sleep(5)
            node = cluster.leader(prefix + topic)
            cluster.run("kill", str(node))
            kills.append((topic, node))
            time.sleep(8)  # one broker short: writes go on with two in sync
            cluster.run("start", str(node))
        for p in publishers:
            p.join(timeout=300)
        assert not any(p.is_alive() for p in publishers), "publishers did not finish"
        assert len(tally.acknowledged) == EVENTS
        assert {n for _, n in kills}, "no broker was killed"

        deadline = time.monotonic() + 180
        delivered: Counter[str] = Counter()
        while time.monotonic() < deadline:
            delivered = Counter(
                i["event_id"] for i in social.feed() if i["event_id"] in tally.acknowledged
            )
            if set(delivered) == tally.acknowledged:
                break
            time.sleep(1)
        lost = tally.acknowledged - set(delivered)
        duplicated = [e for e, n in delivered.items() if n > 1]
        assert not lost, f"{len(lost)} acknowledged events never delivered"
        assert not duplicated, f"{len(duplicated)} events delivered more than once"
        server_errors = {s: n for s, n in tally.answers.items() if s >= 500 and s != 503}
        assert not server_errors, f"5xx other than 503: {server_errors}"

        auditor = samsyn.org("oversight", scopes=["audit:read"])
        verdict = auditor.call("GET", "/v1/audit/verify").json()
        assert verdict["ok"] is True, verdict
    finally:
        samsyn.stop()
