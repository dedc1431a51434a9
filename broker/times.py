"""Times as the contract writes them: RFC 3339 text (``schemas/*.json``, ``date-time``)."""

from __future__ import annotations

from datetime import datetime


def rfc3339(text: str) -> datetime:
    """The aware time of RFC 3339 ``text``. RFC 3339 lets "T" and "Z" be lower case (and the
    schemas' pattern does too); ``datetime.fromisoformat`` wants them upper case. Raises
    ``ValueError`` for text that is not a time."""
    return datetime.fromisoformat(text.upper())
