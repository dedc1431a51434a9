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

    async def send(self, topic: str, value: Any, key: Any = None) -> asyncio.Future[Any]:
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
