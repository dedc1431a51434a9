"""Kafka clients built from settings (plaintext locally; TLS and SASL/SCRAM in production).

Records are the typed JSON of :mod:`broker.records`: producers take records and write their
bytes; consumers hand out the bytes, which each reader decodes into the records its topic holds.
Topic names: ``events.v1`` (key: child pseudonym), ``registry.v1`` (key: child
pseudonym), ``deliveries.v1`` (key: recipient organisation), ``audit.v1`` (one partition, one
ordered chain), ``keys.v1`` (key: child pseudonym; compacted, a tombstone is a null value).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from broker import records
from broker.config import Settings

EVENTS = "events.v1"
REGISTRY = "registry.v1"
DELIVERIES = "deliveries.v1"
AUDIT = "audit.v1"
# Events the policy could not decide (a fault for that event alone, after retries): parked here
# for an operator, so that the rest of their partition is routed.
DEAD_LETTERS = "events.dlq.v1"
# Each child's wrapped data key, so that a database restored from a backup gets back the keys
# made after it (broker/privacy/keylog.py).
KEYS = "keys.v1"


def connection(settings: Settings) -> dict[str, Any]:
    """The connection arguments every aiokafka client of this deployment shares."""
    args: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        args["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_security_protocol.startswith("SASL"):
        args["sasl_mechanism"] = settings.kafka_sasl_mechanism or "SCRAM-SHA-512"
        args["sasl_plain_username"] = settings.kafka_sasl_username
        args["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return args


def producer(settings: Settings, **extra: Any) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (acks=all); ``extra``
    adds to or overrides these arguments."""
    args: dict[str, Any] = {
        **connection(settings),
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 1,
        # A router transaction holds thousands of records. At aiokafka's default (16 KiB per
        # partition) every full batch made send() wait for the sender to drain it, and the
        # transaction went out as many small produce requests. Below the 1 MiB request limit.
        "max_batch_size": 512 * 1024,
        # None stays None: a tombstone in a compacted topic (keys.v1) is a record without value.
        "value_serializer": lambda v: None if v is None else records.encode(v),
        "key_serializer": lambda k: k.encode() if isinstance(k, str) else k,
    }
    return AIOKafkaProducer(**(args | extra))


class SenderDied(Exception):
    """A producer's background sender has ended: the producer will never deliver again."""


def sender_alive(producer: AIOKafkaProducer) -> bool:
    """Whether the producer's background sender still runs. aiokafka ends it on an error it
    does not retry (e.g. the transaction coordinator unreachable while Kafka restarts) and only
    fails what was pending then; a later transaction would wait for it for ever. The task is
    not public API (hence the look inside); a producer not yet started counts as alive."""
    task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    return task is None or not task.done()


def consumer(
    settings: Settings, *topics: str, group_id: str, instance: str | None = None, **extra: Any
) -> AIOKafkaConsumer:
    """A consumer that sees only committed transactions and commits offsets by hand. With an
    ``instance`` it is a static member of its group (KIP-345): restarted under the same name it
    gets its partitions back at once, without waiting for the group to notice its absence."""
    return AIOKafkaConsumer(
        *(settings.topic(t) for t in topics),
        **connection(settings),
        group_id=settings.topic(group_id),  # the prefix isolates deployments sharing Kafka
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        group_instance_id=instance,
        **extra,
    )


async def gather(
    consumer: AIOKafkaConsumer, records: list[Any], *, max_records: int, linger_ms: int
) -> list[Any]:
    """``records`` (the start of a batch, just fetched) and what more comes within
    ``linger_ms`` (Kafka's linger.ms, on the consuming side), up to ``max_records``, in the
    order fetched. Why: each batch costs a fixed round of queries and transactions whatever its
    size; under steady load, batches taken as soon as anything is there are small and spend the
    cores on those rounds instead of on records."""
    deadline = time.monotonic() + linger_ms / 1000
    while records and len(records) < max_records and (left := deadline - time.monotonic()) > 0:
        fetched = await consumer.getmany(
            timeout_ms=max(1, round(left * 1000)), max_records=max_records - len(records)
        )
        records = records + [r for rs in fetched.values() for r in rs]
    return records


async def read_to_end(
    consumer: AIOKafkaConsumer, take: Callable[[ConsumerRecord[Any, Any]], None], within_s: float
) -> None:
    """Hand ``take`` every record of the started, subscribed ``consumer``'s partitions, from the
    beginning up to each partition's end offset at the start of the read (for read_committed,
    its last stable offset): all of it, not whatever has come within a wait; records written
    after the read began are left out. The assignment, then the read, each within
    ``within_s`` (``TimeoutError``)."""
    async with asyncio.timeout(within_s):
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
    partitions = sorted(consumer.assignment())
    await consumer.seek_to_beginning(*partitions)
    ends = await consumer.end_offsets(partitions)
    async with asyncio.timeout(within_s):
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for tp, batch in (await consumer.getmany(timeout_ms=250)).items():
                for record in batch:
                    if record.offset < ends[tp]:
                        take(record)


@lru_cache(maxsize=4096)
def key_partition(key: str, partitions: int) -> int:
    """The partition of a keyed record: Kafka's default (murmur2 of the key's UTF-8 bytes), the
    same as aiokafka's and the Java client's, so every producer puts a key where the others do.
    Remembered: the keys are mostly the few organisations, and murmur2 is pure Python."""
    hashed: int = murmur2(key.encode())
    return (hashed & 0x7FFFFFFF) % partitions


async def send_batched(
    producer: AIOKafkaProducer, records: Sequence[tuple[str, str | None, Any]]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Send (topic, key, value) records as one record batch per partition (``create_batch``,
    ``send_batch``) rather than one ``send`` each: aiokafka's send costs a future, a partitioner
    call and an accumulator look-up per record, which was a fifth of the router's CPU. Keyed
    records go to :func:`key_partition`; records without a key all go to one partition picked
    at random per call (as Kafka's sticky partitioner does). The same order per partition as
    sends one by one, and the same transaction: a batch joins the producer's open one.

    Returns, per record, its batch's future and its place in the batch: its offset is the
    batch's base offset plus that place (:func:`offsets`)."""
    builders: dict[tuple[str, int], Any] = {}  # the open batch of each partition
    placed: list[tuple[Any, int]] = []  # each record's batch and place in it
    sent: dict[Any, asyncio.Future[Any]] = {}  # each batch's future, once submitted
    unkeyed: dict[str, int] = {}
    counts: dict[str, int] = {}
    for topic, key, value in records:
        if topic not in counts:
            counts[topic] = len(await producer.partitions_for(topic))
        count = counts[topic]
        if key is None:
            if topic not in unkeyed:
                unkeyed[topic] = random.randrange(count)  # noqa: S311 - spread, not secrecy
            partition = unkeyed[topic]
        else:
            partition = key_partition(key, count)
        tp = (topic, partition)
        builder = builders.get(tp)
        if builder is None:
            builder = builders[tp] = producer.create_batch()
        metadata = builder.append(timestamp=None, key=key, value=value)
        if metadata is None:
            # Full: send it and go on in a new one (its records keep their order).
            sent[builder] = await _submit(producer, builder, tp)
            builder = builders[tp] = producer.create_batch()
            metadata = builder.append(timestamp=None, key=key, value=value)
            if metadata is None:
                raise ValueError(f"a record for {topic} is larger than a whole batch")
        placed.append((builder, metadata.offset))
    for tp, builder in builders.items():
        sent[builder] = await _submit(producer, builder, tp)
    return [(sent[builder], place) for builder, place in placed]


async def _submit(producer: AIOKafkaProducer, builder: Any, tp: tuple[str, int]) -> Any:
    future = await producer.send_batch(builder, tp[0], partition=tp[1])
    # A failed batch also fails the transaction or the caller's wait on offsets(); this only
    # keeps asyncio from warning of an exception nobody read.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


async def offsets(sent: list[tuple[asyncio.Future[Any], int]]) -> list[int]:
    """The offsets of records sent by :func:`send_batched`, once Kafka has acknowledged them."""
    return [(await future).offset + place for future, place in sent]


async def metadata_ok(settings: Settings, timeout_s: float = 2.0) -> bool:
    admin = AIOKafkaAdminClient(**connection(settings), request_timeout_ms=int(timeout_s * 1000))
    try:
        await admin.start()
        topics = await admin.list_topics()
        return settings.topic(EVENTS) in topics
    finally:
        await admin.close()
