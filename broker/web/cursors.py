"""Opaque, stable paging cursors (the position in an ordered sequence, base64url-wrapped)."""

from __future__ import annotations

import base64
import binascii

from broker.web.errors import InvalidInput

PREFIX = "c1:"
# Positions are INTEGER columns (feed and audit seq): a larger one was never given out, and
# PostgreSQL would refuse to compare with it (a 500 instead of the 422 below).
MAX_SEQ = 2**31 - 1


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, pointer: str = "/after") -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw.startswith(PREFIX) and raw[len(PREFIX) :].isdigit():
            seq = int(raw[len(PREFIX) :])
            if seq <= MAX_SEQ:
                return seq
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidInput(
        f"{pointer}: not a cursor this API gave out",
        errors=[{"pointer": pointer, "detail": "invalid cursor"}],
    )
