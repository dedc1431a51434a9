"""``next_offsets``: per partition, the offset after the last record of a batch, which is what
a worker commits (to Kafka or beside its rows) so that a restart reads on from there."""

from __future__ import annotations

import random

from aiokafka.structs import ConsumerRecord, TopicPartition

from broker.infra.positions import next_offsets


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, offset, 0, 0, None, None, None, 0, 0, [])


def test_the_offset_after_the_highest_of_each_partition() -> None:
    rng = random.Random(7)
    records = [
        _record(topic, partition, offset)
        for topic in ("events.v1", "registry.v1")
        for partition in range(3)
        for offset in range(partition * 10, partition * 10 + 5 + partition)
    ]
    rng.shuffle(records)  # a batch of several fetches need not be in offset order
    assert next_offsets(records) == {
        TopicPartition(topic, partition): partition * 10 + 5 + partition
        for topic in ("events.v1", "registry.v1")
        for partition in range(3)
    }


def test_offset_zero_and_an_empty_batch() -> None:
    assert next_offsets([_record("t", 0, 0)]) == {TopicPartition("t", 0): 1}
    assert next_offsets([]) == {}
