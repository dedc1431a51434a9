"""Kafka's copy of a read-side consumer's positions (broker/infra/positions.py, LagMarks): at most
one offset commit per interval while batches keep coming, the rest as soon as a fetch brings
nothing, and one at the first idle fetch of a new session, so the lag reads 0 once caught up."""

from __future__ import annotations

from typing import Any

import pytest

from broker.infra import positions
from broker.infra.positions import LagMarks


class FakeConsumer:
    """Counts commits; what it would commit is its positions, whatever they are."""

    def __init__(self, assigned: bool = True) -> None:
        self.commits = 0
        self.assigned = assigned

    async def commit(self) -> None:
        self.commits += 1

    def assignment(self) -> set[Any]:
        return {("audit.v1", 0)} if self.assigned else set()


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


async def test_busy_consumer_commits_once_per_interval(clock: list[float]) -> None:
    consumer = FakeConsumer()
    marks = LagMarks(consumer, deadline_s=5, clock=lambda: clock[0])
    await marks.stored()
    assert consumer.commits == 1
    for _ in range(10):  # ten batches within the interval: none of them told
        clock[0] += positions.LAG_MARK_EVERY_S / 20
        await marks.stored()
    assert consumer.commits == 1
    clock[0] += positions.LAG_MARK_EVERY_S
    await marks.stored()
    assert consumer.commits == 2


async def test_caught_up_consumer_tells_kafka_at_once_then_nothing_more(
    clock: list[float],
) -> None:
    consumer = FakeConsumer()
    marks = LagMarks(consumer, deadline_s=5, clock=lambda: clock[0])
    await marks.stored()
    clock[0] += 0.01
    await marks.stored()  # within the interval: not told yet
    assert consumer.commits == 1
    await marks.idle()  # the next fetch brought nothing: the last batch is told now
    assert consumer.commits == 2
    for _ in range(5):  # idle on: nothing new to tell
        await marks.idle()
    assert consumer.commits == 2


async def test_new_session_commits_at_its_first_idle_fetch_once_assigned(
    clock: list[float],
) -> None:
    consumer = FakeConsumer(assigned=False)
    marks = LagMarks(consumer, deadline_s=5, clock=lambda: clock[0])
    await marks.idle()  # no partitions yet: nothing to commit (aiokafka would refuse)
    assert consumer.commits == 0
    consumer.assigned = True
    await marks.idle()  # positions from the database, maybe ahead of Kafka's: told once
    await marks.idle()
    assert consumer.commits == 1
