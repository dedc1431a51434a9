"""The key log (``keys.v1``) in memory, for tests and benchmarks that need a key ring without
Kafka: what was written, in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.privacy.kek import KeyWrapper
from broker.privacy.keylog import Latest
from broker.privacy.keyring import SubjectKeys
from broker.records import WrappedSubjectKey


class MemoryKeyLog:
    def __init__(self) -> None:
        self.records: list[tuple[str, WrappedSubjectKey | None]] = []

    async def put(self, key: WrappedSubjectKey) -> int:
        self.records.append((key.pseudonym, key))
        return len(self.records) - 1

    async def tombstone(self, pseudonyms: Sequence[str]) -> list[int]:
        return [await self._tombstone(p) for p in pseudonyms]

    async def _tombstone(self, pseudonym: str) -> int:
        self.records.append((pseudonym, None))
        return len(self.records) - 1

    def latest(self) -> dict[str, Latest]:
        """What ``read_key_log`` would read: each child's last record with its offset."""
        return {p: Latest(offset, key) for offset, (p, key) in enumerate(self.records)}


def key_ring(
    sessions: async_sessionmaker[AsyncSession],
    wrapper: KeyWrapper,
    log: MemoryKeyLog | None = None,
    **options: Any,
) -> SubjectKeys:
    """A key ring writing to ``log`` (a fresh one by default), the key log taken as imported."""
    keys = SubjectKeys(sessions, wrapper, log or MemoryKeyLog(), **options)
    keys.imported()
    return keys
