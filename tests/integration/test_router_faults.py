"""Fail closed and exactly once: OPA away means no disclosure and no loss; a router killed with
SIGKILL mid-batch and restarted loses and duplicates nothing."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import Opa, Org, child, start_samsyn, start_worker

pytestmark = [pytest.mark.integration, pytest.mark.one_database]


def report(skola: Org, barn: str) -> dict[str, object]:
    return skola.envelope(
        barn,
        "mandatory.report",
        {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv testanmälan."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )


def deliveries(org: Org, event_ids: set[str]) -> Counter[str]:
    return Counter(
        i["event_id"]
        for i in org.feed()
        if i["event_id"] in event_ids and i["type"].endswith("mandatory.report.v1")
    )


@pytest.fixture
def private_opa() -> Iterator[Opa]:
    opa = Opa()
    opa.start()
    yield opa
    opa.stop()


def test_opa_down_holds_events_and_discloses_nothing(
    stack: dict[str, str], private_opa: Opa, tmp_path: Path
) -> None:
    """While OPA is down, accepted events stay pending and nothing is delivered or decided;
    when OPA returns, every held event is delivered exactly once."""
    samsyn = start_samsyn(
        {**stack, "SAMSYN_OPA_URL": private_opa.url}, f"sqlite+aiosqlite:///{tmp_path}/opa.db"
    )
    try:
        skola, soc = samsyn.org("school", "1439"), samsyn.org("social_services", "1439")
        skola.publish(report(skola, child(8)))  # routing works while OPA is up

        private_opa.stop()
        held = [report(skola, child(8)) for _ in range(15)]
        for env in held:
            assert skola.call("POST", "/v1/events", json=env).status_code == 202
        time.sleep(4)
        ids = {str(e["id"]) for e in held}
        assert not deliveries(soc, ids), "disclosed while OPA was down"
        for env in held:
            assert skola.call("GET", f"/v1/events/{env['id']}").json()["status"] == "pending"
        r = samsyn.call("GET", "/readyz")
        assert r.status_code == 503
        assert "opa" in r.json()["detail"]

        private_opa.start()
        for env in held:
            skola.wait_routed(str(env["id"]))
        got = deliveries(soc, ids)
        assert set(got) == ids
        assert set(got.values()) == {1}
    finally:
        samsyn.stop()


def test_router_sigkill_loses_and_duplicates_nothing(stack: dict[str, str], tmp_path: Path) -> None:
    """A router process killed with SIGKILL three times under load, and restarted each time,
    still routes every accepted event exactly once to its recipient."""
    samsyn = start_samsyn(
        stack, f"sqlite+aiosqlite:///{tmp_path}/kill.db", workers='["materializer", "sealer"]'
    )
    router = start_worker(samsyn, "router")
    try:
        skola, soc = samsyn.org("school", "1461"), samsyn.org("social_services", "1461")
        events = [report(skola, child(10)) for _ in range(240)]
        sent: list[str] = []

        def publish() -> None:
            for env in events:
                r = skola.call("POST", "/v1/events", json=env)
                assert r.status_code == 202, r.text
                sent.append(str(env["id"]))

        publisher = threading.Thread(target=publish)
        publisher.start()
        for _ in range(3):
            time.sleep(1.5)
            router.send_signal(signal.SIGKILL)
            router.wait()
            router = start_worker(samsyn, "router")
        publisher.join()
        assert len(sent) == len(events)
        for event_id in sent:
            skola.wait_routed(event_id, timeout=120)
        got = deliveries(soc, set(sent))
        assert set(got) == set(sent), "lost deliveries"
        assert max(got.values()) == 1, "duplicated deliveries"
    finally:
        router.kill()
        samsyn.stop()
