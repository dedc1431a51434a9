"""Keyed pseudonyms for children, so the broker can key and index by child without the number.

Kafka keys, topic payload keys and the audit index carry `HMAC-SHA256(key, personnummer)` rather
than the number. A plain hash would not do: the space of valid personnummer is small enough to
enumerate, so without a secret key every hash could be reversed.

A pseudonym names the key it was made with (`<key id>:<hex>`) so keys can be rotated: new records
use the current key, and lookups try the pseudonym under every key still held.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from broker.subjects.personnummer import Personnummer

# RFC 2104 discourages HMAC keys shorter than the hash output: 32 bytes for SHA-256.
MIN_KEY_BYTES = 32
# The key id is the pseudonym's prefix up to ':', so it must not contain one.
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
# The longest pseudonym: a 32-character key id, ':' and 64 hex digits. Every column that stores
# one (``subject_pseudonym``) must hold at least this many characters.
MAX_LENGTH = 32 + 1 + 64


class Pseudonymiser:
    """Turns a `Personnummer` into a stable pseudonym under a set of secret keys."""

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        """Take the keys by id and the id of the key new pseudonyms are made with.

        The mapping is copied, so a caller changing it later cannot change pseudonyms.
        """
        if current not in keys:
            raise ValueError(f"the current key id {current!r} is not among the keys")
        for key_id, secret in keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise ValueError(
                    f"key id {key_id!r} must be 1-32 characters of letters, digits, '_', '.', '-'"
                )
            if len(secret) < MIN_KEY_BYTES:
                raise ValueError(
                    f"key {key_id!r} has {len(secret)} bytes; at least {MIN_KEY_BYTES} are needed"
                )
        self._keys = dict(keys)
        self._current = current

    def pseudonym(self, pn: Personnummer) -> str:
        """The pseudonym under the current key: what new records are written with."""
        return self._under(self._current, pn)

    def candidates(self, pn: Personnummer) -> list[str]:
        """The pseudonym under every key held, current first, to find records during rotation."""
        others = [key_id for key_id in self._keys if key_id != self._current]
        return [self._under(key_id, pn) for key_id in [self._current, *others]]

    def _under(self, key_id: str, pn: Personnummer) -> str:
        digest = hmac.new(self._keys[key_id], pn.digits.encode("ascii"), hashlib.sha256)
        return f"{key_id}:{digest.hexdigest()}"
