"""Ingest inserts first and answers a repeated id from the row the insert met: many concurrent
publishes of one event give one 202, the rest 200, and one delivery."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.kit import Samsyn, child

pytestmark = pytest.mark.integration


def test_concurrent_publishes_of_one_id_accept_it_once(samsyn: Samsyn) -> None:
    barn = child(9)
    skola = samsyn.org("school", "1438")
    soc = samsyn.org("social_services", "1438")
    skola.relate(barn, "enrolled")
    env = skola.envelope(
        barn,
        "mandatory.report",
        {"areas": ["trygghet"], "urgency": "normal", "description": "Fiktiv oro."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )

    def publish(_: int) -> int:
        with httpx.Client(timeout=30) as client:
            r = client.post(
                f"{samsyn.url}/v1/events",
                json=env,
                headers={"Authorization": f"Bearer {skola.token}"},
            )
            assert r.json() == {"id": env["id"], "status": "accepted"}, r.text
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(publish, range(8)))
    assert statuses == [200] * 7 + [202]
    skola.wait_routed(env["id"])
    assert len([i for i in soc.feed() if i["event_id"] == env["id"]]) == 1
