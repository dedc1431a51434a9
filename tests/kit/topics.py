"""Reading what a topic holds, whole."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

READ_WITHIN_S = 60


async def read_to_end(consumer: AIOKafkaConsumer) -> list[Any]:
    """Every record of the started ``consumer``'s partitions, from the beginning up to each
    partition's end offset at the start of the read (for read_committed, its last stable
    offset): all of it, not whatever has come within a wait. ``TimeoutError`` when that takes
    longer than ``READ_WITHIN_S``."""
    async with asyncio.timeout(READ_WITHIN_S):
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        parts = sorted(consumer.assignment())
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        found: list[Any] = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=250)
            found += [r for tp, rs in batch.items() for r in rs if r.offset < ends[tp]]
        return found
