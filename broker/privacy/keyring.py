"""Each child's data key: made on first use, stored wrapped, unwrapped through a bounded cache.

The cache keeps unwrapped keys per process (least recently used out first, each at most
``ttl_s``): a batch of events costs one query for the keys it lacks and no KEK call for the
others. A key shredded by another process is therefore still usable here for at most ``ttl_s``;
the process that shreds forgets it at once, and caches no key it reads while a shred's
transaction is open (the key read may be the one being destroyed: the shred's own audit record
reaches the follow-up worker before the commit, and it asks for that child's key).

Every key made, re-wrapped or destroyed is also written to the key log (``keylog.py``) inside the
transaction that changes its row, so that a restored database gets back what came after its
backup. No key is handed out before the process has imported that log (:meth:`imported`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import CursorResult, bindparam, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

from broker.infra.db import utcnow
from broker.privacy.aead import new_data_key
from broker.privacy.kek import KeyWrapper
from broker.privacy.keylog import KeyLog
from broker.privacy.models import SUBJECT_KEYS, SubjectKey
from broker.records import WrappedSubjectKey
from broker.web.errors import Unavailable


class SubjectKeys:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        wrapper: KeyWrapper,
        log: KeyLog,
        *,
        cache_size: int = 10_000,
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        import_wait_s: float = 5.0,
    ) -> None:
        self.sessions = sessions
        self.wrapper = wrapper
        self.log = log
        self._imported = asyncio.Event()
        self._import_wait_s = import_wait_s
        self._cache: OrderedDict[str, tuple[AESGCM, float]] = OrderedDict()
        self._size = cache_size
        self._ttl = ttl_s
        self._clock = clock
        # What a key read from the database must not have crossed to be cached: a forget (the
        # count moved) or an open shred.
        self._forgets = 0
        self._shreds_open = 0

    def imported(self) -> None:
        """The key log is in the database (``keylog.import_key_log``): keys may be handed out.
        Before, a restored database could still hold a key destroyed since its backup, or lack
        one made since."""
        self._imported.set()

    @property
    def ready(self) -> bool:
        return self._imported.is_set()

    async def _wait_for_import(self) -> None:
        if self._imported.is_set():
            return  # without suspending: the cached path stays a few microseconds
        try:
            await asyncio.wait_for(self._imported.wait(), self._import_wait_s)
        except TimeoutError:
            raise Unavailable(
                "Barnens nycklar läses ännu in från Kafka; försök igen. "
                "The children's data keys are still being read from Kafka; try again."
            ) from None

    async def for_writing(self, pseudonyms: Iterable[str]) -> dict[str, AESGCM]:
        """The key of each child, made (or made anew, after a shred) where there is none."""
        keys = await self.for_reading(pseudonyms)
        for pseudonym in sorted(set(pseudonyms) - keys.keys()):
            keys[pseudonym] = await self._create(pseudonym)
        return keys

    async def for_reading(self, pseudonyms: Iterable[str]) -> dict[str, AESGCM]:
        """The key of each child that has one; a child without (never had one, or shredded) is
        left out, and its ciphertexts read as :class:`~broker.privacy.aead.Unreadable`."""
        await self._wait_for_import()
        wanted = set(pseudonyms)
        keys: dict[str, AESGCM] = {}
        now = self._clock()
        for pseudonym in wanted:
            cached = self._cache.get(pseudonym)
            if cached is not None and now - cached[1] < self._ttl:
                self._cache.move_to_end(pseudonym)
                keys[pseudonym] = cached[0]
        missing = wanted - keys.keys()
        if missing:
            forgets = self._forgets
            async with self.sessions() as session:
                rows = await session.execute(
                    select(SubjectKey).where(
                        SubjectKey.pseudonym.in_(missing), SubjectKey.wrapped_key.is_not(None)
                    )
                )
                stored = list(rows.scalars())
            for row in stored:
                keys[row.pseudonym] = await self._unwrap(row, forgets)
        return keys

    async def _unwrap(self, row: SubjectKey, forgets: int) -> AESGCM:
        assert row.kek_id is not None
        assert row.wrapped_key is not None
        raw = await self.wrapper.unwrap(row.kek_id, row.wrapped_key, context=row.pseudonym.encode())
        return self._remember(row.pseudonym, AESGCM(raw), forgets)

    def _remember(self, pseudonym: str, key: AESGCM, forgets: int) -> AESGCM:
        """``key``, cached unless a key was forgotten since ``forgets`` was read or a shred is
        open: then it may be a destroyed key, good for the caller's moment but not for ttl_s."""
        if self._forgets != forgets or self._shreds_open:
            return key
        self._cache[pseudonym] = (key, self._clock())
        self._cache.move_to_end(pseudonym)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return key

    async def _create(self, pseudonym: str) -> AESGCM:
        """A new key for the child; if another process made one first, that one (first wins)."""
        forgets = self._forgets
        raw = new_data_key()
        kid, wrapped = await self.wrapper.wrap(raw, context=pseudonym.encode())
        try:
            async with self.sessions() as session, session.begin():
                # A shredded row gets the new key; the condition keeps a concurrent maker's.
                remade = await session.execute(
                    update(SubjectKey)
                    .where(SubjectKey.pseudonym == pseudonym, SubjectKey.wrapped_key.is_(None))
                    .values(kek_id=kid, wrapped_key=wrapped, created_at=utcnow(), shredded_at=None)
                )
                if cast(CursorResult[Any], remade).rowcount == 0:
                    session.add(SubjectKey(pseudonym=pseudonym, kek_id=kid, wrapped_key=wrapped))
                    await session.flush()
                # In the key log before the key seals anything: no record in Kafka whose key a
                # restore could lose. The row stays locked until the commit.
                await self._logged(
                    session, WrappedSubjectKey(pseudonym=pseudonym, kek_id=kid, wrapped_key=wrapped)
                )
        except IntegrityError:
            pass  # the row exists: ours or the other's key is in it, read below
        else:
            return self._remember(pseudonym, AESGCM(raw), forgets)
        async with self.sessions() as session:
            row = await session.get(SubjectKey, pseudonym)
        if row is None or row.wrapped_key is None:
            raise RuntimeError("a child's data key was shredded while it was being made")
        return await self._unwrap(row, forgets)

    def forget(self, pseudonyms: Iterable[str]) -> None:
        self._forgets += 1
        for pseudonym in pseudonyms:
            self._cache.pop(pseudonym, None)

    async def shred(self, session: AsyncSession, pseudonyms: Iterable[str]) -> list[str]:
        """Destroy the keys of ``pseudonyms`` in the caller's transaction; the ones destroyed.
        Until that transaction ends (commit or rollback) this process caches no key it reads."""
        wanted = sorted(set(pseudonyms))
        self._hold_cache_until_end(session, wanted)
        await self._wait_for_import()
        rows = await session.execute(
            update(SubjectKey)
            .where(SubjectKey.pseudonym.in_(wanted), SubjectKey.wrapped_key.is_not(None))
            .values(wrapped_key=None, kek_id=None, shredded_at=utcnow())
            .returning(SubjectKey.pseudonym)
            .execution_options(synchronize_session=False)
        )
        destroyed = sorted(rows.scalars())
        if destroyed:
            # Tombstones in the same transaction: a restore from an older backup destroys these
            # keys again, and compaction removes their wrapped copies from the topic.
            offsets = await self.log.tombstone(destroyed)
            table = SUBJECT_KEYS
            await (await session.connection()).execute(
                update(table)
                .where(table.c.pseudonym == bindparam("p"))
                .values(log_offset=bindparam("o")),
                [{"p": p, "o": o} for p, o in zip(destroyed, offsets, strict=True)],
            )
        return destroyed

    def _hold_cache_until_end(self, session: AsyncSession, pseudonyms: list[str]) -> None:
        self._shreds_open += 1
        self.forget(pseudonyms)
        open_ = [True]  # the listener stays on the (short-lived) session, idle

        def ended(_: Session, transaction: SessionTransaction) -> None:
            # The outermost transaction: committed, rolled back or closed unfinished.
            if open_[0] and transaction.parent is None:
                open_[0] = False
                self._shreds_open -= 1
                self.forget(pseudonyms)

        event.listen(session.sync_session, "after_transaction_end", ended)

    async def _logged(self, session: AsyncSession, key: WrappedSubjectKey) -> None:
        """Write ``key`` to the key log and its offset to its row (locked by the caller)."""
        offset = await self.log.put(key)
        await session.execute(
            update(SubjectKey)
            .where(SubjectKey.pseudonym == key.pseudonym)
            .values(log_offset=offset)
            .execution_options(synchronize_session=False)
        )

    async def rewrap(self, batch: int = 500) -> int:
        """Re-wrap every data key not under the current KEK; the number re-wrapped.

        Each key is replaced only if its row is unchanged since it was read, so a key shredded or
        re-made meanwhile stays as that left it. The data keys themselves do not change: every
        ciphertext stays readable, and no cache needs to forget anything."""
        await self._wait_for_import()
        current = self.wrapper.current_kid
        done = 0
        while True:
            async with self.sessions() as session:
                rows = await session.execute(
                    select(SubjectKey)
                    .where(SubjectKey.wrapped_key.is_not(None), SubjectKey.kek_id != current)
                    .limit(batch)
                )
                todo = list(rows.scalars())
            if not todo:
                return done
            for row in todo:
                assert row.kek_id is not None
                assert row.wrapped_key is not None
                context = row.pseudonym.encode()
                raw = await self.wrapper.unwrap(row.kek_id, row.wrapped_key, context=context)
                kid, wrapped = await self.wrapper.wrap(raw, context=context)
                async with self.sessions() as session, session.begin():
                    changed = await session.execute(
                        update(SubjectKey)
                        .where(
                            SubjectKey.pseudonym == row.pseudonym,
                            SubjectKey.kek_id == row.kek_id,
                            SubjectKey.wrapped_key == row.wrapped_key,
                        )
                        .values(kek_id=kid, wrapped_key=wrapped)
                    )
                    if cast(CursorResult[Any], changed).rowcount:
                        await self._logged(
                            session,
                            WrappedSubjectKey(
                                pseudonym=row.pseudonym, kek_id=kid, wrapped_key=wrapped
                            ),
                        )
                        done += 1
