"""The baseline: a plain aiokafka consume -> produce pass-through, in a process of its own.

It reads the very records the router read (the run's ``events.v1``, three partitions) in its own
consumer group, read_committed, ``max_records`` per batch like the router, and writes each record's
bytes unchanged (no JSON decoding) to an output topic with three partitions through a
*transactional* producer (acks=all, idempotent), committing the input offsets in the same
transaction per batch, as the router does. One record out per record in.

Prints one JSON line: records, seconds (first record received to last transaction committed),
records/s, and this process's peak RSS and CPU seconds.

    python -m bench.passthrough --bootstrap HOST:PORT --source T --sink T --group G --records N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition


async def ensure_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if name not in await admin.list_topics():
            await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def passthrough(
    bootstrap: str, source: str, sink: str, group: str, records: int, batch_max: int
) -> dict[str, float]:
    await ensure_topic(bootstrap, sink, 3)
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=1,
        transactional_id=f"{group}-{uuid.uuid4().hex[:6]}",
        transaction_timeout_ms=10_000,
    )
    await producer.start()
    await consumer.start()
    done = 0
    first: float | None = None
    try:
        while done < records:
            batch = await consumer.getmany(timeout_ms=200, max_records=batch_max)
            if not any(batch.values()):
                continue
            if first is None:
                first = time.perf_counter()
            offsets: dict[TopicPartition, int] = {
                tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs
            }
            async with producer.transaction():
                for rs in batch.values():
                    for r in rs:
                        await producer.send(sink, r.value, key=r.key)
                await producer.send_offsets_to_transaction(offsets, group)
            done += sum(len(rs) for rs in batch.values())
        seconds = time.perf_counter() - (first or time.perf_counter())
    finally:
        await consumer.stop()
        await producer.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "records": done,
        "seconds": round(seconds, 3),
        "per_s": round(done / seconds, 1) if seconds else 0.0,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--sink", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--records", type=int, required=True)
    p.add_argument("--batch-max", type=int, default=500)
    a = p.parse_args()
    result = asyncio.run(
        passthrough(a.bootstrap, a.source, a.sink, a.group, a.records, a.batch_max)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
