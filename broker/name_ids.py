"""Name-based ids (RFC 9562 version 5): the same name gives the same id, so a decision or a
delivery made again after a crash is recognised downstream.

The text of ``uuid.uuid5(namespace, name)`` made from the hash's hex digits, without the ``UUID``
object or a byte array on the way: the router makes two of these per event and candidate, and
the object's construction and formatting were two thirds of their cost, the byte array's bit
setting and hex formatting a quarter of what remained.
"""

from __future__ import annotations

import hashlib
import uuid

# The variant's hex digit for each first hex digit of the clock sequence: its top two bits set
# to the RFC's 10.
_VARIANT = {d: "89ab"[int(d, 16) & 0x3] for d in "0123456789abcdef"}


def name_id(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``."""
    h = hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False).hexdigest()
    # The thirteenth hex digit is the version (5), the seventeenth carries the variant.
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
