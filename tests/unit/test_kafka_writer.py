"""The API's producer is replaced when its background sender has ended (aiokafka ends it on
errors it does not retry, e.g. while Kafka restarts): that write answers 503, the next ones go
through a new producer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from broker.config import Settings
from broker.infra import kafka
from broker.infra.kafka_writer import KafkaWriter
from broker.records import ConsentWithdrawn
from broker.web.errors import Unavailable


def withdrawn(consent_id: str) -> ConsentWithdrawn:
    return ConsentWithdrawn(org="org-1", client="client-1", consent_id=consent_id)


class FakeProducer:
    def __init__(self, sender_task: asyncio.Task[Any]) -> None:
        self._sender = SimpleNamespace(sender_task=sender_task)
        self.sent: list[Any] = []
        self.stopped = False
        self.error: Exception | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send(
        self, topic: str, value: Any, key: Any = None, partition: int | None = None
    ) -> asyncio.Future[Any]:
        self.sent.append(value)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.error is not None:
            done.set_exception(self.error)
        else:
            done.set_result(SimpleNamespace(offset=len(self.sent) - 1))  # RecordMetadata
        return done


async def test_a_producer_out_of_sequence_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch lost while Kafka restarted: every later write is out of order for the broker."""
    running = asyncio.create_task(asyncio.Event().wait())
    poisoned, fresh = FakeProducer(running), FakeProducer(running)
    poisoned.error = OutOfOrderSequenceNumber()
    monkeypatch.setattr(kafka, "producer", lambda settings: fresh)
    writer = KafkaWriter(Settings())
    writer._producer = poisoned
    with pytest.raises(Unavailable):
        await writer.send("registry.v1", withdrawn("c-1"))
    for _ in range(50):
        if writer._producer is fresh:
            break
        await asyncio.sleep(0.01)
    await writer.send("registry.v1", withdrawn("c-2"))
    assert fresh.sent == [withdrawn("c-2")]
    await writer.stop()
    running.cancel()


async def test_a_producer_whose_sender_ended_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    async def ends() -> None:
        raise RuntimeError("transaction coordinator gone")

    dead_task = asyncio.create_task(ends())
    await asyncio.gather(dead_task, return_exceptions=True)
    running = asyncio.create_task(asyncio.Event().wait())
    dead, fresh = FakeProducer(dead_task), FakeProducer(running)
    monkeypatch.setattr(kafka, "producer", lambda settings: fresh)

    writer = KafkaWriter(Settings())
    writer._producer = dead
    with pytest.raises(Unavailable):
        await writer.send("registry.v1", withdrawn("c-1"))
    assert not dead.sent
    for _ in range(50):
        if writer._producer is fresh:
            break
        await asyncio.sleep(0.01)
    await writer.send("registry.v1", withdrawn("c-2"))
    assert fresh.sent == [withdrawn("c-2")]
    await writer.stop()
    assert dead.stopped
    assert fresh.stopped
    running.cancel()


class SilentProducer(FakeProducer):
    """Takes every record and never acknowledges it (a sender that no longer delivers)."""

    async def send(
        self, topic: str, value: Any, key: Any = None, partition: int | None = None
    ) -> asyncio.Future[Any]:
        self.sent.append(value)
        return asyncio.get_running_loop().create_future()


async def test_a_write_that_is_never_acknowledged_ends_within_the_deadline() -> None:
    """A caller may hold a database transaction while it writes (a new child's key is logged
    before its row commits); on SQLite that transaction locks every writer, so the write must
    end, with 503, within SAMSYN_KAFKA_DEADLINE_S."""
    running = asyncio.create_task(asyncio.Event().wait())
    writer = KafkaWriter(Settings(kafka_deadline_s=0.2))
    writer._producer = SilentProducer(running)
    started = asyncio.get_running_loop().time()
    with pytest.raises(Unavailable):
        await writer.send("registry.v1", withdrawn("c-1"))
    assert asyncio.get_running_loop().time() - started < 2
    running.cancel()
