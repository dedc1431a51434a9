"""The HTTP content modes of the CloudEvents binding, parsed into one envelope."""

from __future__ import annotations

import pytest

from broker.ingest import modes
from broker.web.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType


@pytest.mark.parametrize(
    ("headers", "mode"),
    [
        ({"content-type": "application/json"}, modes.Mode.STRUCTURED),
        ({"content-type": "application/cloudevents+json; charset=utf-8"}, modes.Mode.STRUCTURED),
        (
            {"content-type": "application/cloudevents+json", "ce-specversion": "1.0"},
            modes.Mode.STRUCTURED,
        ),
        ({"content-type": "application/json", "ce-specversion": "1.0"}, modes.Mode.BINARY),
        ({"content-type": "Application/CloudEvents-Batch+JSON"}, modes.Mode.BATCH),
        ({}, modes.Mode.STRUCTURED),
    ],
)
def test_mode_of(headers: dict[str, str], mode: modes.Mode) -> None:
    assert modes.mode_of(headers) is mode


def test_binary_headers_become_attributes_percent_decoded() -> None:
    envelope = modes.binary(
        {
            "ce-specversion": "1.0",
            "ce-id": "a%20b%25",
            "ce-purpose": "early_support",
            "content-type": "application/json; charset=utf-8",
            "authorization": "Bearer x",
        },
        b'{"level": 2}',
    )
    assert envelope == {
        "specversion": "1.0",
        "id": "a b%",
        "purpose": "early_support",
        "datacontenttype": "application/json",
        "data": {"level": 2},
    }


def test_binary_refuses_data_that_is_not_json() -> None:
    with pytest.raises(UnsupportedMediaType):
        modes.binary({"ce-specversion": "1.0", "content-type": "text/plain"}, b"hej")
    with pytest.raises(MalformedBody):
        modes.binary({"ce-specversion": "1.0", "content-type": "application/json"}, b"{")


def test_batch_bounds() -> None:
    assert modes.batch(b"[]", 2) == []
    with pytest.raises(PayloadTooLarge):
        modes.batch(b"[{}, {}, {}]", 2)
    with pytest.raises(MalformedBody):
        modes.batch(b"  ", 2)
