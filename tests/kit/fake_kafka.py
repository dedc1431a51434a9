"""An in-memory stand-in for the API's Kafka producer and its key-log reader at start, for
tests where Kafka is not what is tested (the in-process layer, tests/inprocess/): it takes what
the app writes, per topic, in order, and acknowledges at once; ``down`` makes every write answer
503 as the real one does while Kafka is away."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from broker.config import Settings
from broker.infra.kafka_writer import KafkaWriter
from broker.privacy.keylog import Latest
from broker.records import Record
from broker.web.errors import Unavailable


class FakeKafkaWriter(KafkaWriter):
    """:class:`KafkaWriter` without a broker: ``written[topic]`` holds the (key, record) pairs
    acknowledged so far, the topic named without the deployment's prefix."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.written: defaultdict[str, list[tuple[str | None, Record | None]]] = defaultdict(list)
        self.down = False

    def start(self) -> None:
        """Connected at once: there is nothing to connect to."""

    async def connected(self, timeout_s: float) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send_keyed(
        self, topic: str, records: Sequence[tuple[str | None, Record | None]]
    ) -> list[int]:
        """Their offsets, as the real one answers: one log per topic (a None value is a
        tombstone)."""
        if self.down:
            raise Unavailable("Kafka is not reachable; nothing was written, try again")
        log = self.written[topic]
        first = len(log)
        log.extend(records)
        return list(range(first, len(log)))

    async def read_key_log(self, settings: Settings) -> dict[str, Latest]:
        """The key log at start: empty, as on a new deployment (the in-process app starts on
        a new database every time; what it writes later is in ``written``)."""
        return {}

    def counts(self) -> dict[str, int]:
        """How many records each topic holds."""
        return {topic: len(records) for topic, records in self.written.items()}
