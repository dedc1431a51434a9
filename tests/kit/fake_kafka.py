"""An in-memory stand-in for the API's Kafka producer, for tests where Kafka is not what is
tested (the in-process layer, tests/inprocess/): it takes what the app writes, per topic, in
order, and acknowledges at once; ``down`` makes every write answer 503 as the real one does
while Kafka is away."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from broker.config import Settings
from broker.infra.kafka_writer import KafkaWriter
from broker.records import Record
from broker.web.errors import Unavailable


class FakeKafkaWriter(KafkaWriter):
    """:class:`KafkaWriter` without a broker: ``written[topic]`` holds the (key, record) pairs
    acknowledged so far, the topic named without the deployment's prefix."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.written: defaultdict[str, list[tuple[str | None, Record]]] = defaultdict(list)
        self.down = False

    def start(self) -> None:
        """Connected at once: there is nothing to connect to."""

    async def connected(self, timeout_s: float) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send_keyed(self, topic: str, records: Sequence[tuple[str | None, Record]]) -> None:
        if self.down:
            raise Unavailable("Kafka is not reachable; nothing was written, try again")
        self.written[topic].extend(records)

    def counts(self) -> dict[str, int]:
        """How many records each topic holds."""
        return {topic: len(records) for topic, records in self.written.items()}
