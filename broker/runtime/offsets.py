"""How far a consumer group is behind: per partition, the end offset a read_committed reader
sees (the last stable offset: records of open transactions are not yet readable, so not yet
lag) minus the offset the group committed (the beginning of the log when it never committed).

Asked with clients of its own (never the worker's), so the answer holds when the worker's own
clients are the ones that hang: the lag monitor samples it into ``samsyn_consumer_lag``, and the
progress watchdog of every worker (``broker.runtime.supervise``) asks whether work is waiting.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from broker.config import Settings
from broker.infra import kafka

PROBE_TIMEOUT_MS = 5_000


async def group_lag(
    settings: Settings,
    admin: AIOKafkaAdminClient,
    probe: AIOKafkaConsumer,
    group: str,
    topics: Iterable[str],
) -> dict[TopicPartition, int]:
    """The group's lag on every partition of ``topics`` (names without the prefix)."""
    names = sorted({settings.topic(t) for t in topics})
    # Asked every time, so partitions added to a topic are seen.
    tps = [
        TopicPartition(d["topic"], p["partition"])
        for d in await admin.describe_topics(names)
        if d["error_code"] == 0
        for p in d["partitions"]
    ]
    if not tps:
        return {}
    committed = await admin.list_consumer_group_offsets(settings.topic(group), partitions=tps)
    ends = await probe.end_offsets(tps)
    starts = await probe.beginning_offsets(tps)
    lag: dict[TopicPartition, int] = {}
    for tp in sorted(tps):
        meta = committed.get(tp)
        position = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
        lag[tp] = max(ends[tp] - position, 0)
    return lag


class LagProbe:
    """The clients that ask for offsets: an admin client and a consumer without a group (it only
    asks for offsets, it never joins or commits)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.admin = AIOKafkaAdminClient(
            **kafka.connection(settings), request_timeout_ms=PROBE_TIMEOUT_MS
        )
        self.probe = AIOKafkaConsumer(
            **kafka.connection(settings),
            group_id=None,
            isolation_level="read_committed",
            request_timeout_ms=PROBE_TIMEOUT_MS,
        )

    async def __aenter__(self) -> LagProbe:
        await self.admin.start()
        try:
            await self.probe.start()
        except BaseException:
            await self.admin.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.probe.stop()
        finally:
            await self.admin.close()

    async def lag(self, group: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
        return await group_lag(self.settings, self.admin, self.probe, group, topics)


async def backlog(settings: Settings, group: str, topics: tuple[str, ...]) -> int:
    """The group's total lag, asked with fresh clients (opened and closed for this answer)."""
    async with LagProbe(settings) as probe:
        return sum((await probe.lag(group, topics)).values())
