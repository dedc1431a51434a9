"""The API's Kafka producer, started in the background so the process comes up (and reports
``/readyz`` 503) while Kafka is away; until it is connected every write answers 503.

A producer that can never deliver again is replaced: one whose background sender has ended
(aiokafka ends it on errors it does not retry, e.g. while Kafka restarts), and one whose
idempotence state no longer matches the broker's (a batch failed while Kafka restarted, so
every later sequence number is out of order; aiokafka does not reset its producer id as the
Java client does). The write that finds it so answers 503; a new producer is connected."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerEpoch, OutOfOrderSequenceNumber, ProducerFenced

from broker.config import Settings
from broker.infra import kafka
from broker.records import Record
from broker.runtime.supervise import close_within, within
from broker.web.errors import Unavailable

log = structlog.get_logger("samsyn.kafka")
# Errors after which this producer's sequence numbers or epoch are wrong for good.
POISONED = (OutOfOrderSequenceNumber, InvalidProducerEpoch, ProducerFenced)


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

    async def connected(self, timeout_s: float) -> None:
        """Wait until the producer is connected (a one-off command has nothing to do before)."""
        if self._starter is not None:
            await asyncio.wait_for(asyncio.shield(self._starter), timeout_s)

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starter
        producer = self._producer
        if producer is not None:
            await producer.stop()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def _replace_if_dead(self, producer: AIOKafkaProducer, error: Exception | None = None) -> None:
        current = self._producer
        if current is None or current is not producer:
            return
        if kafka.sender_alive(current) and not isinstance(error, POISONED):
            return
        log.warning(
            "kafka producer cannot deliver again; connecting a new one",
            error=type(error).__name__ if error else "sender ended",
        )
        self._producer = None
        closing = asyncio.create_task(close_within(current.stop(), log, "kafka producer"))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)
        self.start()

    async def send(self, topic: str, *values: Record, key: str | None = None) -> None:
        """Send and wait for acks=all on every value, or raise :class:`Unavailable`."""
        await self.send_keyed(topic, [(key, v) for v in values])

    async def send_keyed(
        self, topic: str, records: Sequence[tuple[str | None, Record | None]]
    ) -> list[int]:
        """Send (key, value) records and wait for acks=all on every one, or raise
        :class:`Unavailable`; their offsets. A ``None`` value is a tombstone."""
        producer = self._producer
        if producer is not None:
            self._replace_if_dead(producer)
        producer = self._producer
        if producer is None:
            raise Unavailable("Kafka is not reachable; nothing was written, try again")
        try:
            # Within the deadline: a caller may hold a database transaction meanwhile (a new
            # child's key is logged before its row commits; on SQLite that locks every writer),
            # and a producer that no longer delivers would hold it for ever.
            return await within(
                self._deliver(producer, topic, records),
                self.settings.kafka_deadline_s,
                "the Kafka write",
            )
        except Exception as err:
            self._replace_if_dead(producer, err)
            raise Unavailable(
                "Kafka did not acknowledge the write; nothing was accepted, try again"
            ) from err

    async def _deliver(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        records: Sequence[tuple[str | None, Record | None]],
    ) -> list[int]:
        name = self.settings.topic(topic)
        count = len(await producer.partitions_for(name))
        # The partition from kafka.key_partition (remembered per key), not the partitioner's
        # murmur2 in pure Python for every record: the same partition.
        futures = [
            await producer.send(
                name, v, key=k, partition=None if k is None else kafka.key_partition(k, count)
            )
            for k, v in records
        ]
        return [(await fut).offset for fut in futures]
