"""The API's Kafka producer, started in the background so the process comes up (and reports
``/readyz`` 503) while Kafka is away; until it is connected every write answers 503.

A producer whose background sender has ended (aiokafka ends it on errors it does not retry,
e.g. while Kafka restarts) never delivers again: the first write that finds it so answers 503
and a new producer is connected in its place."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer

from broker.config import Settings
from broker.infra import kafka
from broker.runtime.supervise import close_within
from broker.web.errors import Unavailable

log = structlog.get_logger("samsyn.kafka")


class KafkaWriter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._starter: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

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
        producer = self._producer
        if producer is not None:
            await producer.stop()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def _replace_if_dead(self, producer: AIOKafkaProducer) -> None:
        current = self._producer
        if current is None or current is not producer or kafka.sender_alive(current):
            return
        log.warning("kafka producer's sender has ended; connecting a new producer")
        self._producer = None
        closing = asyncio.create_task(close_within(current.stop(), log, "kafka producer"))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self.start()

    async def send(self, topic: str, *values: dict[str, Any], key: str | None = None) -> None:
        """Send and wait for acks=all on every value, or raise :class:`Unavailable`."""
        producer = self._producer
        if producer is not None:
            self._replace_if_dead(producer)
        producer = self._producer
        if producer is None:
            raise Unavailable("Kafka is not reachable; nothing was written, try again")
        try:
            futures = [await producer.send(self.settings.topic(topic), v, key=key) for v in values]
            for fut in futures:
                await fut
        except Exception as err:
            self._replace_if_dead(producer)
            raise Unavailable(
                "Kafka did not acknowledge the write; nothing was accepted, try again"
            ) from err
