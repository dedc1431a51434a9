"""The API's Kafka producer, started in the background so the process comes up (and reports
``/readyz`` 503) while Kafka is away; until it is connected every write answers 503."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaProducer

from broker.config import Settings
from broker.infra import kafka
from broker.records import Record
from broker.web.errors import Unavailable

log = structlog.get_logger("samsyn.kafka")


class KafkaWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._starter: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._starter = asyncio.create_task(self._connect(), name="kafka-producer")

    async def _connect(self) -> None:
        backoff = 0.5
        while True:
            producer = kafka.producer(self.settings)
            try:
                await producer.start()
            except Exception as err:
                log.warning("kafka producer not connected", error=str(err), retry_in_s=backoff)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._producer = producer
            return

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starter
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, topic: str, *values: Record, key: str | None = None) -> None:
        """Send and wait for acks=all on every value, or raise :class:`Unavailable`."""
        await self.send_keyed(topic, [(key, v) for v in values])

    async def send_keyed(self, topic: str, records: Sequence[tuple[str | None, Record]]) -> None:
        """Send (key, value) records and wait for acks=all on every one, or raise
        :class:`Unavailable`."""
        if self._producer is None:
            raise Unavailable("Kafka is not reachable; nothing was written, try again")
        try:
            futures = [
                await self._producer.send(self.settings.topic(topic), v, key=k) for k, v in records
            ]
            for fut in futures:
                await fut
        except Exception as err:
            raise Unavailable(
                "Kafka did not acknowledge the write; nothing was accepted, try again"
            ) from err
