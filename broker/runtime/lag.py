"""Consumer lag of Samsyn's consumer groups, sampled periodically into ``samsyn_consumer_lag``.

Lag per partition = the partition's end offset as a read_committed reader sees it (the last
stable offset: records of open transactions are not yet readable, so they are not yet lag) minus
the offset the group committed (the beginning of the log when it never committed). It runs
beside the router (``build_workers`` adds it wherever a router runs): growing router lag is the
first sign that routing falls behind or is held (OPA away: fail closed means the events wait).
Two routers export the same numbers; aggregate with ``max by (group, topic, partition)``.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from broker.audit.sealer import GROUP as SEALER_GROUP
from broker.config import Settings
from broker.infra import kafka
from broker.router.loop import GROUP as ROUTER_GROUP
from broker.runtime.metrics import CONSUMER_LAG, LAG_SAMPLE_FAILURES
from consumers.feed.materializer import GROUP as MATERIALIZER_GROUP
from consumers.feed.materializer import TOPICS as MATERIALIZER_TOPICS

log = structlog.get_logger("samsyn.lag")

# label -> (consumer group, topics it reads)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "router": (ROUTER_GROUP, (kafka.EVENTS,)),
    "materializer": (MATERIALIZER_GROUP, MATERIALIZER_TOPICS),
    "sealer": (SEALER_GROUP, (kafka.AUDIT,)),
}


class LagMonitor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                LAG_SAMPLE_FAILURES.inc()
                log.warning("lag sampling failed", error=f"{type(err).__name__}: {err}")
            await self._sleep(self.settings.lag_interval_s)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def _session(self) -> None:
        s = self.settings
        admin = AIOKafkaAdminClient(**kafka.connection(s), request_timeout_ms=10_000)
        # No group: this reader only asks for offsets, it never joins or commits.
        probe = AIOKafkaConsumer(
            **kafka.connection(s), group_id=None, isolation_level="read_committed"
        )
        await admin.start()
        try:
            await probe.start()
            try:
                while not self.stopping.is_set():
                    await self.sample(admin, probe)
                    await self._sleep(s.lag_interval_s)
            finally:
                await probe.stop()
        finally:
            await admin.close()

    async def sample(self, admin: AIOKafkaAdminClient, probe: AIOKafkaConsumer) -> dict[str, int]:
        """Set the gauge for every partition of every group; return the total lag per group."""
        s = self.settings
        names = sorted({s.topic(t) for _, topics in GROUPS.values() for t in topics})
        # Asked every time, so partitions added to a topic are seen.
        partitions = {
            d["topic"]: sorted(p["partition"] for p in d["partitions"])
            for d in await admin.describe_topics(names)
            if d["error_code"] == 0
        }
        totals: dict[str, int] = {}
        for label, (group, topics) in GROUPS.items():
            tps = [
                TopicPartition(s.topic(t), p)
                for t in topics
                for p in partitions.get(s.topic(t), [])
            ]
            if not tps:
                continue
            committed = await admin.list_consumer_group_offsets(s.topic(group), partitions=tps)
            ends = await probe.end_offsets(tps)
            starts = await probe.beginning_offsets(tps)
            totals[label] = 0
            for tp in tps:
                meta = committed.get(tp)
                position = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                lag = max(ends[tp] - position, 0)
                totals[label] += lag
                topic = tp.topic.removeprefix(s.topic_prefix)
                CONSUMER_LAG.labels(label, topic, str(tp.partition)).set(lag)
        return totals
