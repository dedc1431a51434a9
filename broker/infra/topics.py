"""Create Samsyn's topics (idempotent): ``samsyn topics``. Production clusters may provision them
by their own tooling instead; the partition counts here are the defaults for one broker."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.config import Settings
from broker.infra import kafka

# audit.v1 has one partition: the audit chain is one ordered log.
PARTITIONS = {kafka.EVENTS: 3, kafka.REGISTRY: 1, kafka.DELIVERIES: 3, kafka.AUDIT: 1}


async def ensure_topics(settings: Settings, replication: int) -> list[str]:
    admin = AIOKafkaAdminClient(**kafka.connection(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(settings.topic(name), num_partitions=n, replication_factor=replication)
            for name, n in PARTITIONS.items()
            if settings.topic(name) not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        return [t.name for t in missing]
    finally:
        await admin.close()
