"""Taking over the partitions of a router that is gone, in seconds rather than after timeouts.

Two things hold a dead router's work up besides the routers' consumer group noticing it is gone
(the group session timeout, ``SAMSYN_ROUTER_SESSION_TIMEOUT_MS``):

- the Kafka transaction it left open: readers of ``deliveries.v1`` and ``audit.v1`` (read
  committed) stop at its first record until Kafka aborts it (``SAMSYN_ROUTER_TRANSACTION_
  TIMEOUT_MS``, and then only at the broker's next check for timed-out transactions);
- nobody else can abort it: only a producer with its transactional id can.

So every router writes its instance name into the offsets it commits (the offset metadata),
and a router that is given partitions it did not hold reads who committed them last and, when
that was another router no longer in the group, fences that router's transactional id: Kafka
aborts the open transaction at once and refuses the old producer from then on (the takeover
Kafka Streams does per task). A previous owner still in the group (the group rebalanced because
a router joined or came back) is left alone: fencing it would fail its next transaction and
rebuild its session for nothing, and whatever it still commits for a partition it gave up is
dropped by the read model (deterministic delivery ids). A router is known in the group by its
consumer's client id, which names it (DescribeGroups of aiokafka's version has no instance id).
"""

from __future__ import annotations

import time

import structlog
from aiokafka import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition
from prometheus_client import Counter

from broker.config import Settings
from broker.infra import kafka
from broker.runtime.supervise import close_within, within

log = structlog.get_logger("samsyn.router")

FENCED = Counter(
    "samsyn_router_fenced_total",
    "Transactional ids of other routers fenced on taking over their partitions",
)


def transactional_id(settings: Settings, instance: str) -> str:
    """The Kafka transactional id of the router named ``instance``."""
    return settings.topic(f"samsyn-{instance}")


def client_id(instance: str) -> str:
    """The client id of the router named ``instance``'s consumer: how the others see it."""
    return f"samsyn-router {instance}"


class Handover(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """On each assignment: fence the routers that last committed the partitions new to us."""

    def __init__(self, settings: Settings, group: str) -> None:
        self.settings = settings
        self.group = settings.topic(group)
        self.held: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Nothing to hand over: the transaction in flight is fenced by whoever takes over."""

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        new, self.held = set(assigned) - self.held, set(assigned)
        if not new:
            return
        started = time.perf_counter()
        try:
            owners, members = await within(
                self._last_committers(new), self.settings.kafka_deadline_s, "the owners"
            )
            gone = {o for o in owners if client_id(o) not in members}
            for owner in sorted(gone - {self.settings.router_instance}):
                await fence(self.settings, owner)
                FENCED.inc()
                log.info(
                    "took over partitions of another router; fenced its transactions",
                    other=owner,
                    seconds=round(time.perf_counter() - started, 3),
                )
        except Exception as err:  # the transaction timeout still ends it
            log.warning("could not fence the previous owner", error=repr(err))

    async def _last_committers(self, partitions: set[TopicPartition]) -> tuple[set[str], set[str]]:
        """Who committed ``partitions`` last, and the client ids of the group's members."""
        admin = AIOKafkaAdminClient(**kafka.connection(self.settings))
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(
                self.group, partitions=sorted(partitions)
            )
            [described] = await admin.describe_consumer_groups([self.group])
        finally:
            await admin.close()
        [group] = described.to_object()["groups"]
        members = {str(m["client_id"]) for m in group["members"]}
        return {c.metadata for c in committed.values() if c is not None and c.metadata}, members


async def fence(settings: Settings, instance: str) -> None:
    """Start and stop a producer under router ``instance``'s transactional id: starting it
    bumps the id's epoch, which aborts that router's open transaction and fences it."""
    producer = kafka.producer(
        settings,
        transactional_id=transactional_id(settings, instance),
        transaction_timeout_ms=settings.router_transaction_timeout_ms,
        retry_backoff_ms=20,  # the abort is answered with CONCURRENT_TRANSACTIONS until done
    )
    try:
        await within(producer.start(), settings.kafka_deadline_s, "fencing another router")
    finally:
        await close_within(producer.stop(), log, "fencing producer")
