"""Horizontal scale: two router processes (different SAMSYN_ROUTER_INSTANCE, so different Kafka
transactional ids) in one consumer group share the partitions of events.v1; one is killed with
SIGKILL under load and never restarted, the other takes its partitions over within 3 s, and
every event is still delivered exactly once. The takeover fences the dead router's open
transaction (broker/router/handover.py), shown apart on a transaction left open on purpose."""

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
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from tests.kit import Org, Samsyn, child, free_port, start_samsyn, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.one_database]

EVENTS = 300
WATCHED = 20
FAILOVER_S = 3.0


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


def delivered_after(recipient: Org, events: set[str], since: float, timeout: float = 60) -> float:
    """Seconds from ``since`` until every one of ``events`` is in ``recipient``'s feed (read
    with a client of its own: a publisher shares the organisation's)."""
    seen: set[str] = set()
    after: str | None = None
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=recipient.samsyn.url, timeout=10) as http:
        while not events <= seen:
            assert time.monotonic() < deadline, f"{len(events - seen)} events not delivered"
            r = http.get(
                "/v1/feed",
                params={"limit": 500, **({"after": after} if after else {})},
                headers={"Authorization": f"Bearer {recipient.token}"},
            )
            assert r.status_code == 200, r.text
            page = r.json()
            seen |= {i["event_id"] for i in page["items"]}
            after = page["next"] or after
            if not page["items"]:
                time.sleep(0.1)
    return time.monotonic() - since


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
        killed = time.monotonic()
        routers["router-a"].wait()
        # The events acknowledged until WATCHED more after the kill: some are on router-a's
        # partitions (one child each, so spread over all three), and those wait for router-b.
        # Their last delivery is when router-a's partitions are routed again.
        while len(sent) < EVENTS // 2 + WATCHED:
            time.sleep(0.01)
        recovery = delivered_after(soc, set(sent[: EVENTS // 2 + WATCHED]), since=killed)
        print(f"\nrouter-a SIGKILLed for good: its partitions routed again after {recovery:.2f} s")
        # Within 3 s: the session timeout (1.5 s), router-b's next heartbeat (0.3 s), the
        # rebalance, fencing router-a and routing; the feed is polled every 0.1 s.
        assert recovery <= FAILOVER_S, f"router-a's partitions waited {recovery:.2f} s"
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
        metrics = httpx.get(probes + "/metrics").text
        assert 'samsyn_consumer_lag{group="router"' in metrics
        assert fenced(metrics) >= 1, "router-b did not fence router-a on taking over"
    finally:
        for proc in routers.values():
            proc.kill()
            proc.wait()
        samsyn.stop()


def fenced(metrics: str) -> float:
    """samsyn_router_fenced_total from a /metrics page."""
    [line] = [m for m in metrics.splitlines() if m.startswith("samsyn_router_fenced_total ")]
    return float(line.split()[1])


def leave_transaction_open(samsyn: Samsyn, instance: str) -> None:
    """What a router that dies mid-batch leaves behind: under ``instance``'s transactional id, a
    transaction with a record on every deliveries.v1 partition, never committed nor aborted, and
    with a timeout (60 s) far beyond what the test waits."""

    async def open_one() -> None:
        prefix = samsyn.env["SAMSYN_TOPIC_PREFIX"]
        producer = AIOKafkaProducer(
            bootstrap_servers=samsyn.env["SAMSYN_KAFKA_BOOTSTRAP"],
            transactional_id=f"{prefix}samsyn-{instance}",
            transaction_timeout_ms=60_000,
        )
        await producer.start()
        await producer.begin_transaction()
        for partition in await producer.partitions_for(prefix + "deliveries.v1"):
            await producer.send_and_wait(prefix + "deliveries.v1", b"{}", partition=partition)
        # Returning without commit or abort: the transaction stays open on the brokers.

    asyncio.run(open_one())


def test_a_takeover_fences_the_transaction_the_dead_router_left_open(
    stack: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    """router-a routes a few events (its name is in the offsets it commits) and dies; a
    transaction of its name is left open on every deliveries partition, which stops the
    materializer (read committed) until Kafka aborts it after 60 s. router-b, started next,
    reads router-a's name from the committed offsets, fences it, and the events published
    meanwhile reach the feed within seconds, not after the transaction timeout."""
    if not database_url.startswith("postgresql"):
        database_url = f"sqlite+aiosqlite:///{tmp_path}/handover.db"
    samsyn = start_samsyn(stack, database_url, workers='["materializer", "sealer"]')
    routers: list[subprocess.Popen[bytes]] = []
    probe_port = free_port()
    try:
        skola, soc = samsyn.org("school", "1462"), samsyn.org("social_services", "1462")
        routers.append(
            start_worker(samsyn, "router", extra_env={"SAMSYN_ROUTER_INSTANCE": "router-a"})
        )
        first = [report(skola) for _ in range(12)]  # one child each: every partition
        for env in first:
            assert skola.call("POST", "/v1/events", json=env).status_code == 202
        delivered_after(soc, {str(e["id"]) for e in first}, since=time.monotonic())
        routers[0].send_signal(signal.SIGKILL)
        routers[0].wait()
        leave_transaction_open(samsyn, "router-a")

        later = [report(skola) for _ in range(12)]
        for env in later:
            assert skola.call("POST", "/v1/events", json=env).status_code == 202
        started = time.monotonic()
        routers.append(
            start_worker(
                samsyn,
                "router",
                extra_env={
                    "SAMSYN_ROUTER_INSTANCE": "router-b",
                    "SAMSYN_METRICS_PORT": str(probe_port),
                },
            )
        )
        took = delivered_after(soc, {str(e["id"]) for e in later}, since=started, timeout=50)
        print(
            f"\nrouter-b started; events behind the open transaction delivered after {took:.1f} s"
        )
        assert fenced(httpx.get(f"http://127.0.0.1:{probe_port}/metrics").text) == 1
        got = Counter(i["event_id"] for i in soc.feed())
        assert all(got[str(e["id"])] == 1 for e in first + later), "lost or duplicated"
    finally:
        for proc in routers:
            proc.kill()
            proc.wait()
        samsyn.stop()
