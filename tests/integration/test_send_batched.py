"""send_batched on the real Kafka: records written as one record batch per partition land where
aiokafka's send() puts them, keep their order per partition, report their offsets, and join the
producer's open transaction (an abort hides them from read_committed readers, a commit shows
them)."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker import records
from broker.config import Settings
from broker.infra import kafka
from broker.records import RoutingSummary
from tests.kit import read_to_end

pytestmark = pytest.mark.integration
PARTITIONS = 3


def settings_for(stack: dict[str, str]) -> Settings:
    return Settings(
        kafka_bootstrap=stack["SAMSYN_KAFKA_BOOTSTRAP"],
        topic_prefix=f"sb{uuid.uuid4().hex[:8]}.",
        env="test",
    )


async def make_topics(settings: Settings, *names: str) -> None:
    admin = AIOKafkaAdminClient(**kafka.connection(settings))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(settings.topic(n), PARTITIONS, replication_factor=1) for n in names]
        )
    finally:
        await admin.close()


async def read_all(settings: Settings, name: str) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every committed record of the topic."""
    consumer = AIOKafkaConsumer(
        settings.topic(name),
        **kafka.connection(settings),
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        found = await read_to_end(consumer)
    finally:
        await consumer.stop()
    return [(r.partition, r.offset, r.value) for r in found]


def summary(i: int) -> RoutingSummary:
    return RoutingSummary(source_org=f"org-{i % 7}", event_id=f"e{i}", recipients=[])


def test_batched_records_land_where_send_puts_them_in_order_with_their_offsets(
    stack: dict[str, str],
) -> None:
    settings = settings_for(stack)

    async def run() -> None:
        await make_topics(settings, "by-send", "batched")
        # Small batches, so that some partitions take more than one.
        producer = kafka.producer(settings, max_batch_size=1024)
        await producer.start()
        try:
            keys = [f"org-{i % 7}" if i % 5 else None for i in range(200)]
            values = [summary(i) for i in range(200)]
            by_send = [
                await (await producer.send(settings.topic("by-send"), v, key=k))
                for k, v in zip(keys, values, strict=True)
                if k is not None
            ]
            sent = await kafka.send_batched(
                producer,
                [(settings.topic("batched"), k, v) for k, v in zip(keys, values, strict=True)],
            )
            offsets = await kafka.offsets(sent)
        finally:
            await producer.stop()
        found = await read_all(settings, "batched")
        assert len(found) == len(values)
        where = {value: (partition, offset) for partition, offset, value in found}
        encoded = [records.encode(v) for v in values]
        # Each keyed record is in the partition that send() chose for its key.
        send_partition = {
            k: md.partition for k, md in zip([k for k in keys if k], by_send, strict=True)
        }
        for k, value in zip(keys, encoded, strict=True):
            if k is not None:
                assert where[value][0] == send_partition[k]
        # The records without a key share one partition.
        assert len({where[v][0] for k, v in zip(keys, encoded, strict=True) if k is None}) == 1
        # The offsets returned are where they are; per partition, in the order given.
        assert [where[v][1] for v in encoded] == offsets
        per_partition: dict[int, list[int]] = defaultdict(list)
        for value in encoded:
            per_partition[where[value][0]].append(where[value][1])
        assert all(seq == sorted(seq) for seq in per_partition.values())
        assert len(per_partition) == PARTITIONS

    asyncio.run(run())


def test_batched_records_join_the_open_transaction(stack: dict[str, str]) -> None:
    settings = settings_for(stack)

    async def run() -> list[tuple[int, int, bytes]]:
        await make_topics(settings, "txn")
        producer = kafka.producer(settings, transactional_id=f"t-{uuid.uuid4().hex}")
        await producer.start()
        try:
            await producer.begin_transaction()
            await kafka.send_batched(
                producer, [(settings.topic("txn"), f"org-{i}", summary(i)) for i in range(10)]
            )
            await producer.abort_transaction()
            await producer.begin_transaction()
            await kafka.send_batched(
                producer, [(settings.topic("txn"), f"org-{i}", summary(100 + i)) for i in range(5)]
            )
            await producer.commit_transaction()
        finally:
            await producer.stop()
        return await read_all(settings, "txn")

    found = asyncio.run(run())
    assert sorted(v for _, _, v in found) == sorted(
        records.encode(summary(100 + i)) for i in range(5)
    )
