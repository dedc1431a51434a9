"""Horizontal scale: two router processes (different SAMSYN_ROUTER_INSTANCE, so different Kafka
transactional ids) in one consumer group share the partitions of events.v1; one is killed with
SIGKILL under load and never restarted, the other takes its partitions over, and every event is
still delivered exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from tests.kit import Org, Samsyn, child, free_port, start_samsyn, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.one_database]

EVENTS = 300


def assignment(samsyn: Samsyn) -> dict[str, list[int]]:
    """events.v1 partitions per member (client host + member id) of the routers' group."""

    async def describe() -> dict[str, list[int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=samsyn.env["SAMSYN_KAFKA_BOOTSTRAP"])
        await admin.start()
        try:
            prefix = samsyn.env["SAMSYN_TOPIC_PREFIX"]
            [response] = await admin.describe_consumer_groups([prefix + "samsyn-router"])
        finally:
            await admin.close()
        [group] = response.to_object()["groups"]
        members: dict[str, list[int]] = {}
        for member in group["members"]:
            parts: list[int] = []
            if member["member_assignment"]:
                decoded = ConsumerProtocolMemberAssignment.decode(member["member_assignment"])
                for topic, partitions in decoded.assignment:
                    if topic == prefix + "events.v1":
                        parts += partitions
            members[str(member["member_id"])] = sorted(parts)
        return members

    return asyncio.run(describe())


def wait_assignment(samsyn: Samsyn, members: int, timeout: float = 40) -> dict[str, list[int]]:
    """The group once it has ``members`` members that together hold partitions 0, 1 and 2."""
    deadline = time.monotonic() + timeout
    while True:
        got = assignment(samsyn)
        parts = sorted(p for ps in got.values() for p in ps)
        if len(got) == members and parts == [0, 1, 2] and all(got.values()):
            return got
        assert time.monotonic() < deadline, f"group not rebalanced to {members}: {got}"
        time.sleep(0.5)


def report(skola: Org) -> dict[str, object]:
    return skola.envelope(
        child(10),
        "mandatory.report",
        {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv testanmälan."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )


def test_two_routers_share_partitions_and_survive_a_sigkill(
    stack: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    """Routers router-a and router-b split events.v1's three partitions between them. Under a
    load of 300 events (one child each, so every partition gets work) router-a is SIGKILLed
    midway and stays dead: router-b is given all three partitions, the batch router-a had open
    is aborted by Kafka (its transaction times out; nobody of its name fences it), and every
    accepted event is delivered to social services exactly once."""
    # PostgreSQL in that leg (API and both routers share it); on SQLite a file of its own, so
    # that the session's Samsyn process does not contend for the same file lock.
    if not database_url.startswith("postgresql"):
        database_url = f"sqlite+aiosqlite:///{tmp_path}/scale.db"
    samsyn = start_samsyn(stack, database_url, workers='["materializer", "sealer"]')
    routers: dict[str, subprocess.Popen[bytes]] = {}
    probe_port = free_port()  # router-b also serves /healthz, /readyz and /metrics
    try:
        for name, extra in (
            ("router-a", {}),
            ("router-b", {"SAMSYN_METRICS_PORT": str(probe_port)}),
        ):
            routers[name] = start_worker(
                samsyn, "router", extra_env={"SAMSYN_ROUTER_INSTANCE": name, **extra}
            )
        shared = wait_assignment(samsyn, members=2)
        assert sorted(len(p) for p in shared.values()) == [1, 2]

        skola, soc = samsyn.org("school", "1462"), samsyn.org("social_services", "1462")
        events = [report(skola) for _ in range(EVENTS)]
        sent: list[str] = []

        def publish() -> None:
            for env in events:
                r = skola.call("POST", "/v1/events", json=env)
                assert r.status_code == 202, r.text
                sent.append(str(env["id"]))

        publisher = threading.Thread(target=publish)
        publisher.start()
        while len(sent) < EVENTS // 2:
            time.sleep(0.05)
        routers["router-a"].send_signal(signal.SIGKILL)
        routers["router-a"].wait()
        publisher.join()
        assert len(sent) == EVENTS

        # router-b alone holds every partition once the group notices router-a is gone.
        [alone] = wait_assignment(samsyn, members=1).values()
        assert alone == [0, 1, 2]
        for event_id in sent:
            skola.wait_routed(event_id, timeout=120)
        got = Counter(i["event_id"] for i in soc.feed() if i["event_id"] in set(sent))
        assert set(got) == set(sent), f"lost deliveries: {len(set(sent) - set(got))}"
        assert max(got.values()) == 1, "duplicated deliveries"

        probes = f"http://127.0.0.1:{probe_port}"
        assert httpx.get(probes + "/healthz").status_code == 200
        assert httpx.get(probes + "/readyz").status_code == 200
        assert 'samsyn_consumer_lag{group="router"' in httpx.get(probes + "/metrics").text
    finally:
        for proc in routers.values():
            proc.kill()
            proc.wait()
        samsyn.stop()
