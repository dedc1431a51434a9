"""Path parameters as the OpenAPI document states them, with the patterns of ``schemas/``
(so a client generated from the document sends what the server takes)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Path

from broker.contracts import SCHEMAS_DIR

_ENVELOPE: dict[str, Any] = json.loads((SCHEMAS_DIR / "envelope.json").read_text())["properties"]


def _pattern(prop: str) -> str:
    """The envelope's pattern for ``prop``, without its trailing-newline guard: path segments
    are matched by pydantic's regex engine, whose ``$`` is the end of the text already."""
    pattern: str = _ENVELOPE[prop]["pattern"]
    return pattern.removesuffix("(?!\\n)")


UUID = _pattern("consentref")
PERSONNUMMER = _pattern("subject")
TIME_PATTERN = _pattern("time")
DATE_TIME: dict[str, Any] = {"format": "date-time"}
# Cursors are opaque strings; the custom format tells a test generator to use real ones.
CURSOR: dict[str, Any] = {"format": "cursor"}
# A personnummer: its Luhn digit and date cannot be a pattern; the custom format names them.
SubjectPath = Annotated[
    str,
    Path(
        pattern=PERSONNUMMER,
        description="The child's personnummer or samordningsnummer (Luhn digit and date checked)",
        json_schema_extra={"format": "personnummer"},
        examples=["201206159814"],
    ),
]
EventIdPath = Annotated[
    str,
    Path(
        pattern=_pattern("id"),
        max_length=128,
        description="The event's id (the publisher's idempotency key)",
    ),
]
ConsentIdPath = Annotated[str, Path(pattern=UUID, description="The consent's id")]
RelationshipIdPath = Annotated[str, Path(pattern=UUID, description="The relationship's id")]
ClientIdPath = Annotated[
    str,
    Path(
        pattern=_pattern("id"),
        max_length=64,
        description="The client's id (<organisation>.<hex> for the clients the API makes)",
    ),
]
