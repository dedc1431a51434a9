"""Name-based ids that sort by time: the same name and time give the same id, so a decision or a
delivery made again is recognised downstream, and ids of later events mostly sort later.

``name_id`` is ``uuid.uuid5(namespace, name)`` with its first 48 bits replaced by a time in
Unix milliseconds (where UUIDv7 keeps it) and its version 8 (RFC 9562 §5.8, a layout of one's
own): 74 bits of the name's SHA-1 remain. The router gives the ids of an event's decisions and
deliveries the event's own ``time`` (``event_millis``): a client's retry sends the same body, so
an event that reached ``events.v1`` twice (the API stopped between Kafka and its ledger) is
decided twice under the same ids and kept once; the time of acceptance would differ. With
uuid5's random order each new row of ``audit_records`` and ``feed_items`` went to a random leaf
of the unique index on its id, which at a few million rows no longer fits PostgreSQL's buffers
(docs/bench/journal.md, session 22); by time, new ids land near the indexes' right edge.

``time_id`` is a UUIDv7 (time and random bits) for records that have no name to derive from.

Both are made as text from hex digits, without the ``UUID`` object or a byte array on the way:
the router makes two per event and candidate, and the object's construction and formatting were
two thirds of their cost. A :class:`Namespace` keeps its SHA-1 begun over its own 16 bytes, so
that each id copies that state rather than hashing them again (2.6 -> 2.15 µs an id).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid

from broker.times import rfc3339

# The variant's hex digit for each first hex digit of the clock sequence: its top two bits set
# to the RFC's 10.
_VARIANT = {d: "89ab"[int(d, 16) & 0x3] for d in "0123456789abcdef"}


class Namespace:
    """A uuid5 namespace, its SHA-1 begun over its 16 bytes (every name of it starts so)."""

    __slots__ = ("begun", "uuid")

    def __init__(self, namespace: uuid.UUID) -> None:
        self.uuid = namespace
        self.begun = hashlib.sha1(namespace.bytes, usedforsecurity=False)


def name_id(namespace: Namespace, name: str, millis: int) -> str:
    """``uuid5(namespace, name)`` with ``millis`` in its first 48 bits and version 8."""
    sha1 = namespace.begun.copy()
    sha1.update(name.encode())
    h = sha1.hexdigest()
    t = f"{millis:012x}"
    # The thirteenth hex digit is the version, the seventeenth carries the variant.
    return f"{t[:8]}-{t[8:]}-8{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def time_id() -> str:
    """A UUIDv7: the time now in Unix milliseconds, then 74 random bits."""
    t = f"{time.time_ns() // 1_000_000:012x}"
    r = os.urandom(10).hex()
    return f"{t[:8]}-{t[8:]}-7{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:19]}"


def event_millis(time_text: str | None) -> int:
    """An event's ``time`` (RFC 3339, optional) in Unix milliseconds: 0 without one or before
    1970, which the envelope's pattern allows back to 1900."""
    if not time_text:
        return 0
    return max(0, int(rfc3339(time_text).timestamp() * 1000))
