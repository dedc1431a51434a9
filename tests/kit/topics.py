"""Reading what a topic holds, whole."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer

from broker.infra import kafka

READ_WITHIN_S = 60


async def read_to_end(consumer: AIOKafkaConsumer) -> list[Any]:
    """Every record of the started ``consumer``'s partitions up to each partition's end offset
    at the start of the read (``broker.infra.kafka.read_to_end``), as a list."""
    found: list[Any] = []
    await kafka.read_to_end(consumer, found.append, READ_WITHIN_S)
    return found
