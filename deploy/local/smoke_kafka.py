"""Smoke test of the local Kafka node with aiokafka, the client the broker uses.

Checks, each against the running node (SAMSYN_KAFKA_BOOTSTRAP or stack.env):
  1. admin: metadata (describe_cluster, list_topics), create/describe/delete of a topic
  2. plain produce and consume in a consumer group with a commit; a second member joins and
     the group rebalances the partitions between the two; describe/list groups
  3. a transactional consume-transform-produce step: begin, send, send_offsets_to_transaction,
     commit, seen by a read_committed consumer; an aborted transaction stays invisible to it
     and the group's committed offset advanced only with the committed transaction

usage: .venv/bin/python deploy/local/smoke_kafka.py
Exit status 0 when every check passed; the failing step's exception otherwise.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


def bootstrap() -> str:
    value = os.environ.get("SAMSYN_KAFKA_BOOTSTRAP")
    if value:
        return value
    var = Path(os.environ.get("SAMSYN_VAR", Path(__file__).resolve().parents[2] / "var"))
    for line in (var / "stack" / "stack.env").read_text().splitlines():
        key, _, val = line.partition("=")
        if key == "SAMSYN_KAFKA_BOOTSTRAP":
            return val
    raise SystemExit("SAMSYN_KAFKA_BOOTSTRAP not set and not in stack.env: run stack.sh up")


def step(name: str, t0: float) -> None:
    print(f"ok  {name}  ({(time.perf_counter() - t0) * 1000:.0f} ms)", flush=True)


async def consume_n(consumer: AIOKafkaConsumer, n: int, wait_s: float = 20.0) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + wait_s
    while len(got) < n and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            got.extend(r.value for r in records if r.value is not None)
    return got


async def main() -> None:
    bs = bootstrap()
    run = uuid.uuid4().hex[:8]
    src, out = f"smoke.src.{run}", f"smoke.out.{run}"
    print(f"bootstrap {bs}, topics {src} {out}")

    t0 = time.perf_counter()
    admin = AIOKafkaAdminClient(bootstrap_servers=bs, client_id="samsyn-smoke")
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        topics = await admin.list_topics()
        print(
            f"    cluster {cluster.get('cluster_id')} brokers {len(cluster['brokers'])}, "
            f"{len(topics)} topics"
        )
        await admin.create_topics([NewTopic(src, 3, 1), NewTopic(out, 3, 1)])
        # CreateTopics answers once the controller committed the topic; the broker's metadata
        # cache may lag a few ms behind (UNKNOWN_TOPIC_OR_PARTITION meanwhile): wait for it.
        deadline = time.monotonic() + 10
        while True:
            described = await admin.describe_topics([src, out])
            if all(d["error_code"] == 0 and len(d["partitions"]) == 3 for d in described):
                break
            assert time.monotonic() < deadline, described
            await asyncio.sleep(0.05)
        step("admin metadata + create/describe topics", t0)

        t0 = time.perf_counter()
        producer = AIOKafkaProducer(bootstrap_servers=bs, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(src, f"m{i}".encode(), key=f"k{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            src,
            bootstrap_servers=bs,
            group_id=f"smoke-plain-{run}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            got = await consume_n(consumer, 10)
            assert sorted(got) == sorted(f"m{i}".encode() for i in range(10)), got
            await consumer.commit()
        finally:
            await consumer.stop()
        step("idempotent produce + group consume + commit (10 messages)", t0)

        t0 = time.perf_counter()
        group = f"smoke-pair-{run}"
        a = AIOKafkaConsumer(
            src, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest"
        )
        b = AIOKafkaConsumer(
            src, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest"
        )
        await a.start()
        try:
            await a.getmany(timeout_ms=1000)
            await b.start()
            try:
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    await asyncio.gather(a.getmany(timeout_ms=300), b.getmany(timeout_ms=300))
                    if (
                        a.assignment()
                        and b.assignment()
                        and len(a.assignment() | b.assignment()) == 3
                    ):
                        break
                assert a.assignment(), "first member has no partitions"
                assert b.assignment(), "second member has no partitions"
                described = await admin.describe_consumer_groups([group])
                groups = {g for g, _ in await admin.list_consumer_groups()}
                assert group in groups, groups
                print(
                    f"    partitions {sorted(p.partition for p in a.assignment())} / "
                    f"{sorted(p.partition for p in b.assignment())}, "
                    f"state {described[0].groups[0][2]}"
                )
            finally:
                await b.stop()
        finally:
            await a.stop()
        step("group of two members rebalances; describe/list consumer groups", t0)

        t0 = time.perf_counter()
        group = f"smoke-tx-{run}"
        consumer = AIOKafkaConsumer(
            src,
            bootstrap_servers=bs,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        txp = AIOKafkaProducer(bootstrap_servers=bs, transactional_id=f"smoke-router-{run}")
        await consumer.start()
        await txp.start()
        try:
            batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
            deadline = time.monotonic() + 20
            while sum(len(v) for v in batch.values()) < 10 and time.monotonic() < deadline:
                for tp, recs in (await consumer.getmany(timeout_ms=500)).items():
                    batch.setdefault(tp, []).extend(recs)
            n = sum(len(v) for v in batch.values())
            assert n == 10, n
            offsets = {tp: recs[-1].offset + 1 for tp, recs in batch.items()}

            # An aborted transaction: its records must never reach a read_committed reader.
            await txp.begin_transaction()
            await txp.send(out, b"aborted")
            await txp.abort_transaction()

            async with txp.transaction():
                for recs in batch.values():
                    for r in recs:
                        await txp.send(out, b"out-" + r.value, key=r.key)
                await txp.send_offsets_to_transaction(offsets, group)
        finally:
            await txp.stop()
            await consumer.stop()

        committed = AIOKafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False)
        await committed.start()
        try:
            for tp, off in offsets.items():
                have = await committed.committed(tp)
                assert have == off, (tp, have, off)
        finally:
            await committed.stop()

        reader = AIOKafkaConsumer(
            out,
            bootstrap_servers=bs,
            group_id=f"smoke-reader-{run}",
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await reader.start()
        try:
            got = await consume_n(reader, 10)
            await asyncio.sleep(0.5)
            got += await consume_n(reader, 1, wait_s=1.0)
            assert sorted(got) == sorted(f"out-m{i}".encode() for i in range(10)), got
            assert b"aborted" not in got
            end = await reader.end_offsets([TopicPartition(out, p) for p in range(3)])
            print(f"    end offsets of {out} (incl. markers): {sorted(end.values())}")
        finally:
            await reader.stop()
        step(
            "transaction: abort invisible; begin/send/send_offsets_to_transaction/commit "
            "seen by read_committed; group offsets committed",
            t0,
        )

        await admin.delete_topics([src, out])
    finally:
        await admin.close()
    print("all Kafka checks passed")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as exc:  # report the failing step precisely
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
