"""The router's reading of OPA's indexed answer (``samsyn.decide.indexed_decisions``): each
pair gets the Decision its index names in the table; an answer that does not hold together is
no answer (PolicyUnavailable), never a decision made up for a pair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from broker.policy.client import PolicyClient, PolicyUnavailable
from tests.kit import free_port

ALLOW = {"allow": True, "categories": ["concern", "identity"], "reasons": [], "fault": False}
DENY = {"allow": False, "categories": [], "reasons": ["no_relationship"], "fault": False}
FAULT = {"allow": False, "categories": [], "reasons": ["malformed_input"], "fault": True}


class FakeOpa:
    """Answers every decisions query with ``result`` as OPA would, with a decision id and the
    bundle's revision."""

    def __init__(self) -> None:
        self.result: Any = None
        self.paths: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        return web.json_response(
            {
                "decision_id": "d-1",
                "provenance": {"bundles": {"samsyn": {"revision": "r-7"}}},
                "result": self.result,
            }
        )


@pytest.fixture
async def opa() -> AsyncIterator[tuple[FakeOpa, str]]:
    fake = FakeOpa()
    app = web.Application()
    app.router.add_post("/v1/data/{path:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_each_pair_gets_the_decision_its_index_names(opa: tuple[FakeOpa, str]) -> None:
    fake, url = opa
    fake.result = {
        "table": [ALLOW, DENY, FAULT],
        "pairs": {"0": {"vc": 0, "polis": 1}, "1": {"vc": 0, "polis": 1}, "2": {"vc": 2}, "3": {}},
    }
    async with PolicyClient(url, 5.0) as client:
        answer = await client.decide({"now": "2026-12-04T00:00:00Z", "events": []})
    assert fake.paths == ["/v1/data/samsyn/decide/indexed_decisions"]
    assert answer.decisions == {
        "0": {"vc": ALLOW, "polis": DENY},
        "1": {"vc": ALLOW, "polis": DENY},
        "2": {"vc": FAULT},
        "3": {},
    }
    assert answer.faulted == {"2": ["malformed_input"]}
    assert (answer.decision_id, answer.revision) == ("d-1", "samsyn@r-7")


@pytest.mark.parametrize(
    "result",
    [
        {},
        {"table": [ALLOW]},
        {"pairs": {"0": {"vc": 0}}},
        {"table": {"0": ALLOW}, "pairs": {"0": {"vc": 0}}},
        {"table": [ALLOW], "pairs": {"0": {"vc": 1}}},
        {"table": [ALLOW, DENY], "pairs": {"0": {"vc": -1}}},
        {"table": [ALLOW, DENY], "pairs": {"0": {"vc": True}}},
        {"table": [ALLOW], "pairs": {"0": {"vc": "0"}}},
        {"table": [ALLOW], "pairs": {"0": {"vc": 0.0}}},
        {"table": [ALLOW], "pairs": {"0": [0]}},
        {"table": [ALLOW], "pairs": [{"vc": 0}]},
        [ALLOW],
    ],
)
async def test_an_answer_that_does_not_hold_together_is_no_answer(
    opa: tuple[FakeOpa, str], result: Any
) -> None:
    fake, url = opa
    fake.result = result
    async with PolicyClient(url, 5.0) as client:
        with pytest.raises(PolicyUnavailable):
            await client.decide({"now": "2026-12-04T00:00:00Z", "events": []})
