"""key_partition is aiokafka's default partitioner for a key (murmur2, as the Java client)."""

from __future__ import annotations

import random
import string

from aiokafka.partitioner import DefaultPartitioner

from broker.infra.kafka import key_partition


def test_a_key_goes_where_the_default_partitioner_puts_it() -> None:
    rng = random.Random(7)
    partitioner = DefaultPartitioner()
    alphabet = string.ascii_letters + string.digits + "åäöÅÄÖ-:/."
    for _ in range(3000):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 70)))
        count = rng.randrange(1, 13)
        partitions = list(range(count))
        assert key_partition(key, count) == partitioner(key.encode(), partitions, partitions)
