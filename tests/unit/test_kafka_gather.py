"""A batch gathered for up to a linger (``broker.infra.kafka.gather``), with a consumer that
hands out records as they 'arrive' on a schedule."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from broker.config import Settings
from broker.infra import kafka


class ArrivingRecords:
    """getmany() as aiokafka's: what has arrived, at most max_records, or after waiting up to
    timeout_ms for the next arrival; ``arrivals`` are (seconds after start, record)."""

    def __init__(self, arrivals: list[tuple[float, str]]) -> None:
        self.start = time.monotonic()
        self.pending = list(arrivals)
        self.calls = 0

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, list[str]]:
        self.calls += 1
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            now = time.monotonic() - self.start
            ready = [r for at, r in self.pending if at <= now][:max_records]
            if ready or time.monotonic() >= deadline:
                self.pending = self.pending[len(ready) :]
                return {"tp": ready} if ready else {}
            await asyncio.sleep(0.002)


def consumer(fake: ArrivingRecords) -> AIOKafkaConsumer:
    return cast(AIOKafkaConsumer, fake)


async def test_without_linger_the_batch_is_what_was_fetched() -> None:
    fake = ArrivingRecords([(0.0, "b"), (0.01, "c")])
    got = await kafka.gather(consumer(fake), ["a"], max_records=10, linger_ms=0)
    assert got == ["a"]
    assert fake.calls == 0


async def test_records_arriving_within_the_linger_join_the_batch_in_order() -> None:
    fake = ArrivingRecords([(0.01, "b"), (0.02, "c"), (0.5, "late")])
    started = time.monotonic()
    got = await kafka.gather(consumer(fake), ["a"], max_records=10, linger_ms=80)
    assert got == ["a", "b", "c"]
    assert 0.07 <= time.monotonic() - started < 0.4


async def test_a_full_batch_does_not_wait_for_the_linger() -> None:
    fake = ArrivingRecords([(0.0, "b"), (0.0, "c"), (0.0, "d")])
    started = time.monotonic()
    got = await kafka.gather(consumer(fake), ["a"], max_records=3, linger_ms=5_000)
    assert got == ["a", "b", "c"]
    assert time.monotonic() - started < 1
    assert fake.pending == [(0.0, "d")]  # left for the next batch


async def test_nothing_fetched_is_no_batch_and_no_wait() -> None:
    fake = ArrivingRecords([(0.01, "b")])
    got: list[Any] = await kafka.gather(consumer(fake), [], max_records=10, linger_ms=5_000)
    assert got == []
    assert fake.calls == 0


@pytest.mark.parametrize("linger_ms", [-1, 1_001])
def test_the_linger_setting_is_bounded(linger_ms: int) -> None:
    with pytest.raises(ValidationError):
        Settings(router_linger_ms=linger_ms)
