"""The key log (keys.v1, here in memory): every key made, re-wrapped or destroyed is written
before its row commits, wrapped only; importing it into a database restored from an older backup
brings back the keys made since and destroys again the keys destroyed since; a row changed after
the log was read is left alone; a key ring hands out no key before the import."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import broker.privacy.models  # the imports register the tables on Base.metadata
import broker.registry.models  # noqa: F401
from broker.infra.db import Base, make_engine, make_sessionmaker
from broker.privacy.aead import associated, seal, unseal
from broker.privacy.kek import LocalKeks
from broker.privacy.keylog import Imported, Latest, apply_key_log
from broker.privacy.keyring import SubjectKeys
from broker.privacy.models import SubjectKey
from broker.records import WrappedSubjectKey, encode
from broker.web.errors import Unavailable
from tests.kit.keylog import MemoryKeyLog, key_ring

KEKS = LocalKeks({"k1": bytes(range(32))}, "k1")
KNOWN, NEW, SHREDDED = ("p1:" + c * 64 for c in "abc")
AD = associated("event", "school-a", "e-1")


class Database:
    """A SQLite database that can be backed up (a copy of its file) and restored from one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.engine: AsyncEngine = make_engine(f"sqlite+aiosqlite:///{path}")
        self.sessions = make_sessionmaker(self.engine)

    async def backup(self, to: Path) -> Path:
        await self.engine.dispose()  # nothing open: the file is consistent
        shutil.copy(self.path, to)
        return to

    async def rows(self) -> dict[str, SubjectKey]:
        async with self.sessions() as session:
            return {r.pseudonym: r for r in (await session.execute(select(SubjectKey))).scalars()}


@pytest.fixture
async def original(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(tmp_path / "original.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db
    await db.engine.dispose()


async def restored(backup: Path, tmp_path: Path) -> Database:
    return Database(Path(shutil.copy(backup, tmp_path / "restored.db")))


def sealed_for(keys: dict[str, AESGCM], pseudonym: str) -> str:
    return seal(keys[pseudonym], json.dumps(pseudonym).encode(), AD)


async def test_each_key_is_in_the_log_wrapped_before_its_row_commits(original: Database) -> None:
    log = MemoryKeyLog()
    keys = key_ring(original.sessions, KEKS, log)
    await keys.for_writing([KNOWN, NEW])
    rows = await original.rows()
    assert [p for p, _ in log.records] == [KNOWN, NEW]
    for offset, (pseudonym, logged) in enumerate(log.records):
        assert logged is not None
        row = rows[pseudonym]
        # Exactly the row's wrapped bytes and KEK id: never the key in clear.
        assert (logged.kek_id, logged.wrapped_key) == (row.kek_id, row.wrapped_key)
        clear = await KEKS.unwrap("k1", logged.wrapped_key, context=pseudonym.encode())
        written = encode(logged)
        assert clear not in written
        assert base64.b64encode(clear) not in written
        assert row.log_offset == offset


async def test_no_key_is_made_when_the_log_refuses_it(original: Database) -> None:
    class Down(MemoryKeyLog):
        async def put(self, key: WrappedSubjectKey) -> int:
            raise Unavailable("Kafka is not reachable")

    with pytest.raises(Unavailable):
        await key_ring(original.sessions, KEKS, Down()).for_writing([NEW])
    assert await original.rows() == {}


async def test_a_restore_gets_back_keys_made_after_the_backup_and_not_those_destroyed(
    original: Database, tmp_path: Path
) -> None:
    log = MemoryKeyLog()
    keys = await key_ring(original.sessions, KEKS, log).for_writing([KNOWN, SHREDDED])
    backup = await original.backup(tmp_path / "backup.db")
    ring = key_ring(original.sessions, KEKS, log)
    keys |= await ring.for_writing([NEW])  # first seen after the backup
    sealed = {p: sealed_for(keys, p) for p in (KNOWN, NEW, SHREDDED)}
    async with original.sessions() as session, session.begin():
        assert await ring.shred(session, [SHREDDED]) == [SHREDDED]
    assert log.records[-1] == (SHREDDED, None)

    db = await restored(backup, tmp_path)
    try:
        assert set(await db.rows()) == {KNOWN, SHREDDED}  # the backup alone: NEW lost
        done = await apply_key_log(db.sessions, log.latest())
        assert (done.keys, done.tombstones) == (1, 1)  # NEW's key, SHREDDED's tombstone
        after = key_ring(db.sessions, KEKS)
        opened = await after.for_reading([KNOWN, NEW, SHREDDED])
        assert set(opened) == {KNOWN, NEW}
        for p in (KNOWN, NEW):
            assert json.loads(unseal(opened[p], sealed[p], AD)) == p
        assert (await db.rows())[SHREDDED].shredded_at is not None
        # Idempotent: a second start changes nothing.
        before = {p: (r.wrapped_key, r.log_offset) for p, r in (await db.rows()).items()}
        assert await apply_key_log(db.sessions, log.latest()) == Imported(0, 0)
        assert {p: (r.wrapped_key, r.log_offset) for p, r in (await db.rows()).items()} == before
    finally:
        await db.engine.dispose()


async def test_a_child_remade_after_a_shred_gets_its_newest_key_back(
    original: Database, tmp_path: Path
) -> None:
    """Backup after the shred, a new key for the same child after the backup: the log's latest
    record (the new key) wins over the backup's shredded row."""
    log = MemoryKeyLog()
    ring = key_ring(original.sessions, KEKS, log)
    await ring.for_writing([SHREDDED])
    async with original.sessions() as session, session.begin():
        await ring.shred(session, [SHREDDED])
    backup = await original.backup(tmp_path / "backup.db")
    newest = await key_ring(original.sessions, KEKS, log).for_writing([SHREDDED])
    db = await restored(backup, tmp_path)
    try:
        await apply_key_log(db.sessions, log.latest())
        opened = await key_ring(db.sessions, KEKS).for_reading([SHREDDED])
        assert unseal(opened[SHREDDED], sealed_for(newest, SHREDDED), AD) == b'"%s"' % (
            SHREDDED.encode()
        )
    finally:
        await db.engine.dispose()


async def test_a_row_changed_after_the_log_was_read_is_left_alone(original: Database) -> None:
    """Another process re-made the key while this one read the log: its row is newer than the
    tombstone this one read, and keeps its key."""
    log = MemoryKeyLog()
    ring = key_ring(original.sessions, KEKS, log)
    await ring.for_writing([SHREDDED])
    async with original.sessions() as session, session.begin():
        await ring.shred(session, [SHREDDED])
    read_then = log.latest()  # the tombstone
    remade = await ring.for_writing([SHREDDED])
    await apply_key_log(original.sessions, read_then)
    opened = await key_ring(original.sessions, KEKS).for_reading([SHREDDED])
    assert opened[SHREDDED].encrypt(b"\0" * 12, b"x", None) == remade[SHREDDED].encrypt(
        b"\0" * 12, b"x", None
    )


async def test_a_rewrap_is_logged(original: Database) -> None:
    log = MemoryKeyLog()
    await key_ring(original.sessions, KEKS, log).for_writing([KNOWN])
    rotated = LocalKeks({"k1": bytes(range(32)), "k2": bytes(range(1, 33))}, "k2")
    assert await key_ring(original.sessions, rotated, log).rewrap() == 1
    pseudonym, logged = log.records[-1]
    row = (await original.rows())[KNOWN]
    assert logged is not None
    assert (pseudonym, logged.kek_id, logged.wrapped_key) == (KNOWN, "k2", row.wrapped_key)
    assert row.log_offset == len(log.records) - 1


async def test_a_tombstone_for_a_child_the_database_never_had_adds_nothing(
    original: Database,
) -> None:
    await apply_key_log(original.sessions, {NEW: Latest(0, None)})
    assert await original.rows() == {}


async def test_no_key_before_the_log_is_imported(original: Database) -> None:
    keys = SubjectKeys(original.sessions, KEKS, MemoryKeyLog(), import_wait_s=0.05)
    with pytest.raises(Unavailable):
        await keys.for_reading([KNOWN])
    with pytest.raises(Unavailable):
        await keys.for_writing([KNOWN])
    keys.imported()
    assert set(await keys.for_writing([KNOWN])) == {KNOWN}
