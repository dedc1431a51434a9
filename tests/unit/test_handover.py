"""The takeover rule of broker/router/handover.py, without Kafka: on an assignment, fence the
routers that last committed the partitions new to this one, unless that is this router or a
router still in the group. (On the real stack: tests/integration/test_router_scale.py.)"""

from __future__ import annotations

import pytest
from aiokafka.structs import TopicPartition

from broker.config import Settings
from broker.router import handover
from broker.router.handover import Handover, client_id

P0, P1, P2 = (TopicPartition("events.v1", p) for p in range(3))


class Scripted(Handover):
    """Committers and members as the test says; the partitions it was asked about, kept."""

    def __init__(self, owners: set[str], members: set[str]) -> None:
        super().__init__(Settings(router_instance="router-b"), "samsyn-router")
        self.owners, self.members = owners, members
        self.asked: list[set[TopicPartition]] = []

    async def _last_committers(self, partitions: set[TopicPartition]) -> tuple[set[str], set[str]]:
        self.asked.append(set(partitions))
        return self.owners, {client_id(m) for m in self.members}


@pytest.fixture
def fenced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    async def fence(settings: Settings, instance: str) -> None:
        calls.append(instance)

    monkeypatch.setattr(handover, "fence", fence)
    return calls


async def test_a_router_gone_from_the_group_is_fenced_once(fenced: list[str]) -> None:
    h = Scripted(owners={"router-a", "router-b"}, members={"router-b"})
    await h.on_partitions_assigned({P0, P1})
    assert fenced == ["router-a"]  # never itself
    await h.on_partitions_assigned({P0, P1})  # nothing new: nobody asked, nobody fenced
    assert fenced == ["router-a"]
    assert h.asked == [{P0, P1}]
    await h.on_partitions_assigned({P0, P1, P2})  # only the new partition is asked about
    assert h.asked[-1] == {P2}


async def test_a_previous_owner_still_in_the_group_is_left_alone(fenced: list[str]) -> None:
    h = Scripted(owners={"router-a"}, members={"router-a", "router-b"})
    await h.on_partitions_assigned({P0})
    assert fenced == []


async def test_a_failed_lookup_does_not_stop_the_assignment(fenced: list[str]) -> None:
    class Failing(Scripted):
        async def _last_committers(
            self, partitions: set[TopicPartition]
        ) -> tuple[set[str], set[str]]:
            raise ConnectionError("coordinator away")

    await Failing(set(), set()).on_partitions_assigned({P0})  # logged, not raised
    assert fenced == []
