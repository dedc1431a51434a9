"""A data key per child: wrapped by a KEK at rest, cached unwrapped, bound to its record's ids,
destroyed by a shred, re-wrapped by a KEK rotation without any ciphertext changing."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import broker.privacy.models  # the imports register the tables on Base.metadata
import broker.registry.models  # noqa: F401
from broker.config import Settings
from broker.infra.db import Base, make_engine, make_sessionmaker
from broker.infra.keys import load_keys
from broker.privacy.aead import Unreadable, associated, seal, unseal
from broker.privacy.kek import LocalKeks, UnknownKek
from broker.privacy.keyring import SubjectKeys
from broker.privacy.models import SubjectKey
from tests.kit.keylog import key_ring

OLD_KEK = bytes(range(32))


def seal_value(key: AESGCM, value: object, ad: bytes) -> str:
    return seal(key, json.dumps(value).encode(), ad)


def unseal_value(key: AESGCM | None, sealed: str, ad: bytes) -> object:
    return json.loads(unseal(key, sealed, ad))


NEW_KEK = bytes(range(50, 82))
CHILD = "p1:" + "a" * 64
OTHER = "p1:" + "b" * 64
AD = associated("event", "school-a", "e-1")


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/keys.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


def keyring(sessions: async_sessionmaker[AsyncSession], **keks: bytes) -> SubjectKeys:
    wrapper = LocalKeks(keks or {"k1": OLD_KEK}, sorted(keks or {"k1": OLD_KEK})[-1])
    return key_ring(sessions, wrapper)


async def test_a_key_is_made_once_and_stored_only_wrapped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keys = keyring(sessions)
    sealed = seal_value((await keys.for_writing([CHILD]))[CHILD], {"note": "orolig"}, AD)
    async with sessions() as session:
        row = (await session.execute(select(SubjectKey))).scalar_one()
    assert row.pseudonym == CHILD
    assert row.kek_id == "k1"
    assert row.shredded_at is None
    assert row.wrapped_key is not None
    assert len(row.wrapped_key) == 12 + 32 + 16
    # Another process (its own empty cache) unwraps the same key; a second write makes none.
    other_process = keyring(sessions)
    assert unseal_value((await other_process.for_reading([CHILD]))[CHILD], sealed, AD) == {
        "note": "orolig"
    }
    await other_process.for_writing([CHILD])
    async with sessions() as session:
        assert len((await session.execute(select(SubjectKey))).all()) == 1


async def test_each_child_has_its_own_key(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = await keyring(sessions).for_writing([CHILD, OTHER])
    sealed = seal_value(keys[CHILD], "x", AD)
    with pytest.raises(Unreadable):
        unseal_value(keys[OTHER], sealed, AD)


async def test_tampered_ciphertext_and_wrong_associated_data_do_not_decrypt(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = (await keyring(sessions).for_writing([CHILD]))[CHILD]
    sealed = seal_value(key, {"note": "orolig"}, AD)
    raw = bytearray(base64.b64decode(sealed.split(":", 1)[1]))
    raw[20] ^= 1
    tampered = "aead1:" + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(Unreadable):
        unseal_value(key, tampered, AD)
    with pytest.raises(Unreadable):  # the same ciphertext moved to another record
        unseal_value(key, sealed, associated("event", "school-a", "e-2"))
    with pytest.raises(Unreadable):
        unseal_value(key, "not a ciphertext", AD)


async def test_a_wrapped_key_copied_to_another_child_does_not_unwrap(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await keyring(sessions).for_writing([CHILD])
    async with sessions() as session, session.begin():
        row = await session.get(SubjectKey, CHILD)
        assert row is not None
        session.add(SubjectKey(pseudonym=OTHER, kek_id=row.kek_id, wrapped_key=row.wrapped_key))
    with pytest.raises(InvalidTag):
        await keyring(sessions).for_reading([OTHER])


async def test_a_shredded_key_reads_nothing_and_a_new_event_gets_a_new_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keys = keyring(sessions)
    sealed = seal_value((await keys.for_writing([CHILD]))[CHILD], "orolig", AD)
    async with sessions() as session, session.begin():
        assert await keys.shred(session, [CHILD, OTHER]) == [CHILD]
    # Neither this process (its cache forgot the key) nor any other can read it.
    for reader in (keys, keyring(sessions)):
        assert await reader.for_reading([CHILD]) == {}
        with pytest.raises(Unreadable):
            unseal_value((await reader.for_reading([CHILD])).get(CHILD), sealed, AD)
    async with sessions() as session:
        row = await session.get(SubjectKey, CHILD)
        assert row is not None
        assert row.wrapped_key is None
        assert row.shredded_at is not None
    fresh = (await keys.for_writing([CHILD]))[CHILD]
    with pytest.raises(Unreadable):
        unseal_value(fresh, sealed, AD)
    assert unseal_value(fresh, seal_value(fresh, "ny", AD), AD) == "ny"


async def test_a_key_read_while_its_shred_is_open_is_not_cached(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The shred's own audit record reaches the follow-up worker before the shred commits, and
    the worker asks for that child's key: it still reads the key being destroyed. Used for that
    moment, that key must not stay in the cache after the commit."""
    keys = keyring(sessions)
    sealed = seal_value((await keys.for_writing([CHILD, OTHER]))[CHILD], "orolig", AD)
    keys.forget([CHILD, OTHER])
    async with sessions() as session, session.begin():
        assert await keys.shred(session, [CHILD]) == [CHILD]
        during = await keys.for_reading([CHILD, OTHER])  # another connection: before the commit
        assert unseal_value(during[CHILD], sealed, AD) == "orolig"
        assert keys._cache == {}
    assert await keys.for_reading([CHILD]) == {}
    assert OTHER in await keys.for_reading([OTHER])
    assert OTHER in keys._cache  # the shred over, keys are cached again


@pytest.mark.parametrize("end", ["rollback", "close"])
async def test_a_shred_that_does_not_commit_keeps_the_key_and_the_cache_works_after(
    sessions: async_sessionmaker[AsyncSession], end: str
) -> None:
    keys = keyring(sessions)
    await keys.for_writing([CHILD])
    async with sessions() as session:
        await keys.shred(session, [CHILD])
        if end == "rollback":  # else closed unfinished
            await session.rollback()
    assert CHILD in await keys.for_reading([CHILD])
    assert CHILD in keys._cache


async def test_the_cache_is_bounded_and_expires(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = [0.0]
    keys = key_ring(
        sessions, LocalKeks({"k1": OLD_KEK}, "k1"), cache_size=1, ttl_s=10, clock=lambda: now[0]
    )
    await keys.for_writing([CHILD, OTHER])
    assert list(keys._cache) == [OTHER]
    async with sessions() as session, session.begin():
        await keyring(sessions).shred(session, [OTHER])  # another process shreds
    assert OTHER in await keys.for_reading([OTHER])  # cached: still usable for up to ttl_s
    now[0] = 11.0
    assert await keys.for_reading([OTHER]) == {}


async def test_kek_rotation_rewraps_every_key_and_keeps_every_ciphertext(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    before = keyring(sessions, k1=OLD_KEK)
    keys = await before.for_writing([CHILD, OTHER])
    sealed = {p: seal_value(k, p, AD) for p, k in keys.items()}
    during = keyring(sessions, k1=OLD_KEK, k2=NEW_KEK)
    assert await during.rewrap(batch=1) == 2
    assert await during.rewrap() == 0
    async with sessions() as session:
        assert set((await session.execute(select(SubjectKey.kek_id))).scalars()) == {"k2"}
    after = keyring(sessions, k2=NEW_KEK)  # the old KEK is gone
    found = await after.for_reading([CHILD, OTHER])
    assert {p: unseal_value(found[p], s, AD) for p, s in sealed.items()} == {
        CHILD: CHILD,
        OTHER: OTHER,
    }
    with pytest.raises(UnknownKek):
        await keyring(sessions, k1=OLD_KEK).for_reading([CHILD])


def test_keks_must_be_256_bit_and_the_current_one_held() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LocalKeks({"k1": b"short"}, "k1")
    with pytest.raises(ValueError, match="current KEK"):
        LocalKeks({"k1": OLD_KEK}, "k2")
    assert (
        LocalKeks.from_base64(
            {"a": base64.b64encode(OLD_KEK).decode(), "b": base64.b64encode(NEW_KEK).decode()}, None
        ).current_kid
        == "b"
    )


async def test_development_generates_one_kek_shared_by_every_process(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    first = await load_keys(Settings(env="test"), sessions)
    second = await load_keys(Settings(env="test"), sessions)
    wrapped = await first.keks.wrap(b"k" * 32, context=b"c")
    assert await second.keks.unwrap(*wrapped, context=b"c") == b"k" * 32
