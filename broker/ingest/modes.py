"""The three content modes of the CloudEvents HTTP binding, each turned into the same envelope
(the structured JSON form that ``schemas/envelope.json`` describes) before validation.

- structured: the body is the envelope (``application/cloudevents+json``, or plain JSON);
- binary: the context attributes and extensions are ``ce-*`` headers, ``Content-Type`` is
  ``datacontenttype`` and the body is ``data`` (the SDKs' and Knative's default);
- batched: ``application/cloudevents-batch+json``, a JSON array of structured envelopes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any
from urllib.parse import unquote

from broker.web.errors import InvalidInput, MalformedBody, PayloadTooLarge, UnsupportedMediaType

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
HEADER_PREFIX = "ce-"


class Mode(Enum):
    STRUCTURED = "structured"
    BINARY = "binary"
    BATCH = "batch"


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def mode_of(headers: Mapping[str, str]) -> Mode:
    """The binding's rule: a batch or structured media type decides; otherwise a
    ``ce-specversion`` header means binary; anything else is read as a structured body."""
    kind = media_type(headers.get("content-type"))
    if kind == BATCH:
        return Mode.BATCH
    if kind != STRUCTURED and "ce-specversion" in headers:
        return Mode.BINARY
    return Mode.STRUCTURED


def parse_json(raw: bytes, what: str) -> Any:
    if not raw.strip():
        raise MalformedBody(f"the body is empty; send {what}")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedBody(f"the body is not valid JSON: {err}") from err


def structured(raw: bytes) -> Any:
    return parse_json(raw, "a CloudEvents 1.0 JSON envelope")


def binary(headers: Mapping[str, str], raw: bytes) -> dict[str, Any]:
    """The envelope of a binary-mode request. Header values are percent-decoded (the binding
    percent-encodes what a header cannot carry); unknown attributes stay in and are refused by
    the envelope schema by name."""
    envelope: dict[str, Any] = {
        name[len(HEADER_PREFIX) :]: unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(HEADER_PREFIX)
    }
    kind = media_type(headers.get("content-type"))
    if kind:
        envelope["datacontenttype"] = kind
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"data of type {kind!r} is not accepted; event data is JSON (application/json)"
        )
    if raw.strip():
        envelope["data"] = parse_json(raw, "the event data as JSON")
    return envelope


def batch(raw: bytes, max_events: int) -> list[Any]:
    events = parse_json(raw, "a JSON array of CloudEvents 1.0 envelopes")
    if not isinstance(events, list):
        raise InvalidInput(
            "/: a batch is a JSON array of events",
            errors=[{"pointer": "/", "detail": "not an array"}],
        )
    if len(events) > max_events:
        raise PayloadTooLarge(
            f"a batch holds at most {max_events} events; this one has {len(events)}"
        )
    return events
