"""Routing resumes after Kafka restarts, every time: a router whose transactional producer or
consumer group was left behind by the restart (aiokafka issues #1134, #1145) is torn down by
its progress watchdog and rebuilt, instead of staying alive and silent.

A private Kafka node (``kafka.sh`` under its own SAMSYN_VAR) is restarted three times while
events flow through the API; after each restart a new event must be routed within a bound, and
in the end every acknowledged event is delivered exactly once.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kit import Org, PrivateServices, child, eventually, start_samsyn

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]

RESTARTS = 3
STALL_S = 20.0
# Kafka back, then: a transaction deadline or a stall, a session restart with backoff, a new
# group join. Well above what that takes, far below "never".
ROUTED_WITHIN_S = 120.0


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateServices]:
    services = PrivateServices(tmp_path / "var")
    services.script("kafka", "start")
    yield services
    services.script("kafka", "stop")


def report(skola: Org, barn: str) -> dict[str, Any]:
    return skola.envelope(
        barn,
        "mandatory.report",
        {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv testanmälan."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )


def publish_until_accepted(skola: Org, env: dict[str, Any], give_up_s: float = 120) -> None:
    """Publish with the same id until 200/202 (503 while Kafka is away is the designed answer)."""
    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        try:
            r = skola.call("POST", "/v1/events", json=env)
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code in (200, 202):
            return
        assert r is None or r.status_code == 503, r.text
        time.sleep(0.3)
    raise AssertionError(f"event {env['id']} not accepted within {give_up_s} s")


def ready_checks(url: str) -> dict[str, str] | None:
    """The checks of a ``/readyz`` that answers 200, else None."""
    answer = httpx.get(f"{url}/readyz", timeout=10)
    return answer.json()["checks"] if answer.status_code == 200 else None


def test_routing_resumes_after_every_kafka_restart(
    stack: dict[str, str], private_kafka: PrivateServices, tmp_path: Path
) -> None:
    samsyn = start_samsyn(
        {**stack, "SAMSYN_KAFKA_BOOTSTRAP": private_kafka.stack_env()["SAMSYN_KAFKA_BOOTSTRAP"]},
        f"sqlite+aiosqlite:///{tmp_path}/restart.db",
        extra_env={"SAMSYN_WORKER_STALL_S": str(STALL_S), "PYTHONUNBUFFERED": "1"},
    )
    try:
        skola, soc = samsyn.org("school", "1438"), samsyn.org("social_services", "1438")
        barn = child(9)
        accepted: list[str] = []
        stop = threading.Event()

        def flow() -> None:
            while not stop.is_set():
                env = report(skola, barn)
                publish_until_accepted(skola, env)
                accepted.append(str(env["id"]))
                time.sleep(0.05)

        publisher = threading.Thread(target=flow)
        publisher.start()
        recoveries: list[float] = []
        try:
            for _ in range(RESTARTS):
                time.sleep(3)  # events in flight, transactions open, when Kafka goes
                private_kafka.kafka_restart()
                back = time.monotonic()
                print(f"restart {len(recoveries) + 1}: Kafka back", flush=True)
                probe = report(skola, barn)
                publish_until_accepted(skola, probe)
                try:
                    skola.wait_routed(str(probe["id"]), timeout=ROUTED_WITHIN_S)
                except AssertionError:
                    assert samsyn.proc is not None
                    samsyn.proc.send_signal(signal.SIGUSR1)  # where every task waits, in its log
                    time.sleep(2)
                    raise
                recoveries.append(time.monotonic() - back)
                print(f"restart {len(recoveries)}: routing resumed after {recoveries[-1]:.1f} s")
                accepted.append(str(probe["id"]))
        finally:
            stop.set()
            publisher.join()
        assert len(recoveries) == RESTARTS
        for event_id in accepted:
            skola.wait_routed(event_id, timeout=ROUTED_WITHIN_S)
        got = Counter(
            i["event_id"] for i in soc.feed() if i["type"].endswith("mandatory.report.v1")
        )
        assert set(got) == set(accepted), "lost deliveries"
        assert max(got.values()) == 1, "duplicated deliveries"
        # Every process ready again, within the same bound: a worker that met the last restart
        # mid-batch may still be in its restart backoff (up to 10 s, after a 20 s stall) when
        # the last delivery lands; seen once at a load of two cores busy, the sealer's
        # coordinator answering NodeNotReady for a minute after the third restart.
        assert samsyn.read_side_url is not None
        api = eventually(lambda: ready_checks(samsyn.url), "API ready", ROUTED_WITHIN_S)
        assert "router" in api
        read_side = eventually(
            lambda: ready_checks(str(samsyn.read_side_url)), "read side ready", ROUTED_WITHIN_S
        )
        assert {"materializer", "sealer"} <= set(read_side)
        print(f"routing resumed {', '.join(f'{s:.1f}' for s in recoveries)} s after the restarts")
    finally:
        samsyn.stop()
