"""Key-encryption keys (KEKs): the one seam between Samsyn and whatever guards the master keys.

A child's data key is stored only wrapped. :class:`KeyWrapper` is everything Samsyn asks of the
keeper of the KEKs: wrap a data key under the current KEK, unwrap one under the KEK that wrapped
it. :class:`LocalKeks` keeps the KEKs in process memory, from settings (``SAMSYN_KEK_KEYS``). A
municipality's KMS or HSM plugs in as another implementation of the same two calls (for example
AWS KMS ``Encrypt``/``Decrypt`` or a PKCS#11 ``C_WrapKey``/``C_UnwrapKey`` with the same
associated data); the keyring caches unwrapped keys, so such a call is made once per child and
cache period, not per event.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_BYTES = 32
NONCE_BYTES = 12


class KeyWrapper(Protocol):
    @property
    def current_kid(self) -> str:
        """The id of the KEK that wraps new data keys."""
        ...

    async def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        """``(kek id, wrapped key)``: ``data_key`` under the current KEK, bound to ``context``."""
        ...

    async def unwrap(self, kid: str, wrapped: bytes, *, context: bytes) -> bytes:
        """The data key, or an exception when ``kid`` is unknown, ``wrapped`` was changed or it
        was wrapped for another ``context``."""
        ...


class UnknownKek(KeyError):
    """A data key is wrapped under a KEK this process does not hold."""


class LocalKeks:
    """KEKs held in memory: AES-256-GCM key wrapping (a random nonce per wrap, the context as
    associated data, so a wrapped key copied onto another child's row does not unwrap)."""

    def __init__(self, keks: Mapping[str, bytes], current: str) -> None:
        if current not in keks:
            raise ValueError(f"the current KEK id {current!r} is not among the KEKs")
        for kid, kek in keks.items():
            if len(kek) != KEK_BYTES:
                raise ValueError(f"KEK {kid!r} must be {KEK_BYTES} bytes, not {len(kek)}")
        self._keks = {kid: AESGCM(kek) for kid, kek in keks.items()}
        self._current = current

    @classmethod
    def from_base64(cls, keks: Mapping[str, str], current: str | None) -> LocalKeks:
        decoded = {kid: base64.b64decode(v, validate=True) for kid, v in keks.items()}
        return cls(decoded, current or sorted(decoded)[-1])

    @property
    def current_kid(self) -> str:
        return self._current

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keks)

    async def wrap(self, data_key: bytes, *, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        return self._current, nonce + self._keks[self._current].encrypt(nonce, data_key, context)

    async def unwrap(self, kid: str, wrapped: bytes, *, context: bytes) -> bytes:
        kek = self._keks.get(kid)
        if kek is None:
            raise UnknownKek(kid)
        return kek.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
