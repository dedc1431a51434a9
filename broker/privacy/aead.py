"""Encrypt and decrypt a record's personal fields under its child's data key (AES-256-GCM).

A ciphertext is text, so it fits in JSON (Kafka records, JSON columns): ``PREFIX`` + base64 of
a 12-byte random nonce and the ciphertext with its 16-byte tag. The associated data names the
record (its ids), so a ciphertext copied into another record, or another field, fails to decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "aead1:"
NONCE_BYTES = 12
DATA_KEY_BYTES = 32


class Unreadable(Exception):
    """The ciphertext does not decrypt: its key was shredded or replaced, it was changed, or it
    belongs to another record."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * DATA_KEY_BYTES)


def associated(*ids: str | None) -> bytes:
    """The associated data for a record named by ``ids`` (a kind, then its ids, in order)."""
    return "\x1f".join(i or "" for i in ids).encode()


def seal(key: AESGCM, plaintext: bytes, ad: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    return PREFIX + base64.b64encode(nonce + key.encrypt(nonce, plaintext, ad)).decode("ascii")


def unseal(key: AESGCM | None, sealed: str, ad: bytes) -> bytes:
    """The plaintext, or :class:`Unreadable` (also for ``key`` None: no key to be had)."""
    if key is None or not sealed.startswith(PREFIX):
        raise Unreadable
    try:
        raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
        return key.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ad)
    except (InvalidTag, ValueError) as err:
        raise Unreadable from err
