"""keys.v1 on the real Kafka: `samsyn topics` creates it compacted with the configs that bound how
long a destroyed key's wrapped copy stays; what the key log writes (keys, tombstones, the
compaction tick) reads back as each child's latest record."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from broker.config import Settings
from broker.infra import kafka
from broker.infra.kafka_writer import KafkaWriter
from broker.infra.topics import ensure_topics
from broker.privacy.keylog import KafkaKeyLog, Latest, read_key_log
from broker.records import WrappedSubjectKey

pytestmark = pytest.mark.integration

KNOWN, SHREDDED = ("p1:" + c * 64 for c in "ab")


async def key_topic_configs(settings: Settings) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**kafka.connection(settings))
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic(kafka.KEYS))]
        )
        [(_, _, _, _, entries)] = response.resources
        return {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()


def test_the_key_topic_is_compacted_and_reads_back_each_childs_latest_record(
    stack: dict[str, str],
) -> None:
    settings = Settings(
        kafka_bootstrap=stack["SAMSYN_KAFKA_BOOTSTRAP"],
        topic_prefix=f"k{uuid.uuid4().hex[:8]}.",
        env="test",
    )

    async def run() -> tuple[dict[str, str], dict[str, Latest], list[int]]:
        await ensure_topics(settings, replication=1)
        writer = KafkaWriter(settings)
        writer.start()
        try:
            await writer.connected(timeout_s=30)
            log = KafkaKeyLog(writer)
            await log.tick()
            offsets = [
                await log.put(
                    WrappedSubjectKey(pseudonym=p, kek_id="k1", wrapped_key=b"w-" + p[:4].encode())
                )
                for p in (KNOWN, SHREDDED)
            ]
            # Last: a read that missed a partition's last record would give the key back.
            offsets += await log.tombstone([SHREDDED])
        finally:
            await writer.stop()
        return await key_topic_configs(settings), await read_key_log(settings), offsets

    configs, latest, offsets = asyncio.run(run())
    assert configs["cleanup.policy"] == "compact"
    assert configs["max.compaction.lag.ms"] == configs["segment.ms"] == str(3600 * 1000)
    assert configs["min.compaction.lag.ms"] == "0"
    assert configs["delete.retention.ms"] == str(90 * 24 * 3600 * 1000)
    assert latest == {
        KNOWN: Latest(
            offsets[0], WrappedSubjectKey(pseudonym=KNOWN, kek_id="k1", wrapped_key=b"w-p1:a")
        ),
        SHREDDED: Latest(offsets[2], None),  # the tombstone, after its key; the tick left out
    }
