"""Create Samsyn's topics (idempotent): ``samsyn topics``. Production clusters may provision them
by their own tooling instead (with the same configs); the partition counts here are the defaults
for one broker."""

from __future__ import annotations

from datetime import timedelta

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.config import Settings
from broker.infra import kafka

# audit.v1 has one partition: the audit chain is one ordered log. keys.v1 one too: a record per
# child and key, read whole at every start.
PARTITIONS = {
    kafka.EVENTS: 3,
    kafka.REGISTRY: 1,
    kafka.DELIVERIES: 3,
    kafka.AUDIT: 1,
    kafka.DEAD_LETTERS: 1,
    kafka.KEYS: 1,
}
# A destroyed key's wrapped copy leaves keys.v1 when the segment holding it is compacted. The
# active segment never is; it rolls at the first append after max.compaction.lag.ms (gallring
# appends at least once per run, keylog.TICK), and a rolled segment older than the lag is
# cleaned at the cleaner's next pass whatever its dirty ratio. Bound: lag + one gallring interval
# + the cleaner's pass (docs/operations.md).
MAX_COMPACTION_LAG = timedelta(hours=1)


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    def ms(d: timedelta) -> str:
        return str(int(d.total_seconds() * 1000))

    return {
        kafka.KEYS: {
            "cleanup.policy": "compact",
            "segment.ms": ms(MAX_COMPACTION_LAG),
            "max.compaction.lag.ms": ms(MAX_COMPACTION_LAG),
            "min.compaction.lag.ms": "0",
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": ms(settings.keys_tombstone_retention),
        }
    }


async def ensure_topics(settings: Settings, replication: int) -> list[str]:
    admin = AIOKafkaAdminClient(**kafka.connection(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        configs = topic_configs(settings)
        missing = [
            NewTopic(
                settings.topic(name),
                num_partitions=n,
                replication_factor=replication,
                topic_configs=configs.get(name, {}),
            )
            for name, n in PARTITIONS.items()
            if settings.topic(name) not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
