"""Name-based ids (RFC 9562 version 5): the same name gives the same id, so a decision or a
delivery made again after a crash is recognised downstream.

The text of ``uuid.uuid5(namespace, name)`` without the ``UUID`` object on the way: the router
makes two of these per event and candidate, and the object's construction and formatting were
two thirds of their cost.
"""

from __future__ import annotations

import hashlib
import uuid


def name_id(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``."""
    h = bytearray(hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False).digest())
    h[6] = (h[6] & 0x0F) | 0x50  # version 5
    h[8] = (h[8] & 0x3F) | 0x80  # the RFC's variant
    x = h[:16].hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
