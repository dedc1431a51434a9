"""The personal part of a record, sealed under its child's key: the personnummer and ``data``.

An accepted event's envelope is kept in two parts wherever it rests or travels: the clear part
(ids, type, time, purpose, legal basis, consent reference) and ``sealed``, the ciphertext of
``{subject, data}``. The same holds for a feed item (a delivery or a notice). The associated data
names the record, so a sealed part moved to another record does not open:

* an accepted event: ``("event", source organisation, event id)``, in ``events.v1`` and in
  ``accepted_events`` alike (the same ciphertext);
* a feed item: ``("feed", item id)``; a delivery's id is its feed item's, so the router's
  ciphertext in ``deliveries.v1`` is stored as it is, without being opened.
"""

from __future__ import annotations

from typing import Any

import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.privacy.aead import associated, seal, unseal

PERSONAL_FIELDS = ("subject", "data")


class Personal(msgspec.Struct, frozen=True):
    """What a record says about the child: its number (None in a notice about no one child)
    and the payload."""

    subject: str | None
    data: dict[str, Any]


_decoder = msgspec.json.Decoder(Personal)


def event_ad(source_org: str, event_id: str) -> bytes:
    return associated("event", source_org, event_id)


def feed_ad(item_id: str) -> bytes:
    return associated("feed", item_id)


def seal_personal(key: AESGCM, personal: Personal, ad: bytes) -> str:
    return seal(key, msgspec.json.encode(personal), ad)


def open_personal(key: AESGCM | None, sealed: str | None, ad: bytes) -> Personal:
    """The personal part, or :class:`~broker.privacy.aead.Unreadable` (no key, no ciphertext,
    or one that does not open)."""
    return _decoder.decode(unseal(key, sealed or "", ad))


def split_envelope(envelope: dict[str, Any]) -> tuple[dict[str, Any], Personal]:
    """The clear part of an envelope, and its personal part."""
    clear = {k: v for k, v in envelope.items() if k not in PERSONAL_FIELDS}
    return clear, Personal(subject=envelope["subject"], data=envelope["data"])


def join_envelope(clear: dict[str, Any], personal: Personal) -> dict[str, Any]:
    return {**clear, "subject": personal.subject, "data": personal.data}
