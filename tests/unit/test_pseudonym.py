"""Keyed pseudonyms of children: stable per key, distinct across keys, findable across rotation."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest

from broker.subjects.personnummer import Personnummer, luhn_digit
from broker.subjects.pseudonym import Pseudonymiser

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 140))


def fictional(birth: date, serial: int) -> Personnummer:
    """A fictional child (serials 980-999 belong to no real person)."""
    nine = f"{birth:%y%m%d}{serial:03d}"
    return Personnummer(f"{birth:%Y%m%d}{serial:03d}{luhn_digit(nine)}")


CHILD = fictional(date(2012, 6, 15), 981)
OTHER_CHILD = fictional(date(2012, 6, 15), 982)


def test_pseudonym_is_keyed_hmac_sha256_of_the_digits() -> None:
    """The pseudonym is `<key id>:<hex HMAC-SHA256(key, 12 digits)>`, the full 64 hex digits."""
    expected = hmac.new(OLD_KEY, CHILD.digits.encode(), hashlib.sha256).hexdigest()
    assert Pseudonymiser({"k1": OLD_KEY}, "k1").pseudonym(CHILD) == f"k1:{expected}"


def test_pseudonym_is_deterministic() -> None:
    """The same child under the same key always gets the same pseudonym, in any instance."""
    first = Pseudonymiser({"k1": OLD_KEY}, "k1")
    second = Pseudonymiser({"k1": OLD_KEY}, "k1")
    assert first.pseudonym(CHILD) == first.pseudonym(CHILD) == second.pseudonym(CHILD)


def test_pseudonym_differs_per_key_and_per_child() -> None:
    """Another key or another child gives an unrelated pseudonym."""
    under_old = Pseudonymiser({"k1": OLD_KEY}, "k1")
    under_new = Pseudonymiser({"k1": NEW_KEY}, "k1")
    assert under_old.pseudonym(CHILD) != under_new.pseudonym(CHILD)
    assert under_old.pseudonym(CHILD) != under_old.pseudonym(OTHER_CHILD)


def test_rotation_still_finds_old_pseudonyms() -> None:
    """After rotation new records use the new key, and lookups also try every older key."""
    before = Pseudonymiser({"k1": OLD_KEY}, "k1")
    after = Pseudonymiser({"k1": OLD_KEY, "k2": NEW_KEY}, "k2")
    candidates = after.candidates(CHILD)
    assert after.pseudonym(CHILD).startswith("k2:")
    assert candidates == [after.pseudonym(CHILD), before.pseudonym(CHILD)]


def test_keys_are_copied() -> None:
    """Changing the caller's mapping afterwards cannot change pseudonyms."""
    keys = {"k1": OLD_KEY}
    pseudonymiser = Pseudonymiser(keys, "k1")
    expected = pseudonymiser.pseudonym(CHILD)
    keys["k1"] = NEW_KEY
    assert pseudonymiser.pseudonym(CHILD) == expected


@pytest.mark.parametrize(
    ("keys", "current", "message"),
    [
        ({"k1": OLD_KEY[:31]}, "k1", "at least 32"),
        ({"k1": OLD_KEY, "k0": b"short"}, "k1", "at least 32"),
        ({"k1": OLD_KEY}, "k2", "not among the keys"),
        ({}, "k1", "not among the keys"),
        ({"k:1": OLD_KEY}, "k:1", "key id"),
        ({"": OLD_KEY}, "", "key id"),
    ],
)
def test_bad_keys_are_refused(keys: dict[str, bytes], current: str, message: str) -> None:
    """Short keys, a missing current key and key ids that would make pseudonyms ambiguous fail."""
    with pytest.raises(ValueError, match=message):
        Pseudonymiser(keys, current)


def test_every_pseudonym_column_holds_the_longest_pseudonym() -> None:
    """A pseudonym under a 32-character key id fits every ``subject_pseudonym`` column.

    PostgreSQL enforces ``VARCHAR(n)`` (SQLite does not): a column narrower than the longest
    pseudonym made every publish, consent and relationship fail there with 500."""
    import broker.audit.models  # the imports register every table on Base.metadata
    import broker.ingest.models
    import broker.registry.models  # noqa: F401
    import consumers.models  # noqa: F401
    from broker.infra.db import Base
    from broker.subjects.pseudonym import MAX_LENGTH

    longest = Pseudonymiser({"k" * 32: OLD_KEY}, "k" * 32).pseudonym(CHILD)
    assert len(longest) == MAX_LENGTH
    columns = [
        (table.name, table.c.subject_pseudonym.type)
        for table in Base.metadata.tables.values()
        if "subject_pseudonym" in table.c
    ]
    assert len(columns) >= 5
    for name, kind in columns:
        length = getattr(kind, "length", None)
        assert length is not None, name
        assert length >= MAX_LENGTH, f"{name}.subject_pseudonym holds {length} characters"
