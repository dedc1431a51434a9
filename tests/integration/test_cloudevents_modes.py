"""The CNCF CloudEvents SDK against the real stack: publishing in each of the three content
modes of the HTTP binding, and reading the feed as CloudEvents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from tests.kit import Org, Samsyn, child

pytestmark = pytest.mark.integration
BATCH = "application/cloudevents-batch+json"
FORMAT = JSONFormat()


@dataclass(frozen=True)
class Setting:
    barn: str
    consent: str
    skola: Org
    eh: Org


@pytest.fixture(scope="module")
def setting(samsyn: Samsyn) -> Setting:
    """A school and student health around one child, and the guardians' consent to share
    attendance with student health."""
    barn = child(12)
    skola = samsyn.org("school", "1461")
    eh = samsyn.org("student_health", "1461")
    skola.relate(barn, "enrolled")
    eh.relate(barn, "enrolled")
    consent = skola.consent(
        barn,
        {
            "from_kinds": ["school"],
            "to_kinds": ["student_health"],
            "categories": ["attendance"],
            "purposes": ["early_support"],
        },
    )
    return Setting(barn, consent, skola, eh)


def attendance(s: Setting, absence: float = 22.0, **extra: Any) -> CloudEvent:
    """An attendance flag as an integrator builds it with the SDK (id and time by the SDK)."""
    attributes = {
        "source": f"org/{s.skola.id}",
        "type": "se.backabarnet.attendance.flagged.v1",
        "subject": s.barn,
        "datacontenttype": "application/json",
        "purpose": "early_support",
        "legalbasis": "consent",
        "consentref": s.consent,
        **extra,
    }
    data = {"period_start": "2026-10-01", "period_end": "2026-10-31", "absence_percent": absence}
    return CloudEvent(attributes, data)


def post(s: Setting, headers: dict[str, str], body: bytes) -> Any:
    return s.skola.call("POST", "/v1/events", headers=headers, content=body)


def batch_body(*events: BaseCloudEvent) -> bytes:
    """A batch as the binding defines it: a JSON array of structured-mode events."""
    return b"[" + b",".join(FORMAT.write(e) for e in events) + b"]"


def delivered(s: Setting, event_id: str) -> dict[str, Any]:
    (item,) = s.eh.wait_feed(lambda i: i["event_id"] == event_id)
    return item


def test_structured_mode(setting: Setting) -> None:
    event = attendance(setting)
    message = to_structured(event, FORMAT)
    assert message.headers["content-type"].startswith("application/cloudevents+json")
    r = post(setting, message.headers, message.body)
    assert r.status_code == 202, r.text
    assert delivered(setting, event.get_id())["data"]


def test_a_time_in_lower_case_is_a_time(setting: Setting) -> None:
    """RFC 3339 (and the envelope's pattern) lets "T" and "Z" be lower case: such an event is
    accepted, delivered, and its time is the feed item's."""
    event = attendance(setting)
    body = json.loads(to_structured(event, FORMAT).body)
    body["time"] = "2026-10-01t08:30:00.25z"
    r = post(setting, {"content-type": "application/cloudevents+json"}, json.dumps(body).encode())
    assert r.status_code == 202, r.text
    assert delivered(setting, event.get_id())["time"].startswith("2026-10-01T08:30:00.25")


def test_binary_mode_with_extensions_as_headers(setting: Setting) -> None:
    """Binary mode: ce-* headers (incl. purpose, legalbasis, consentref), Content-Type as
    datacontenttype, the data as the body; the same event in structured mode is a repeat."""
    event = attendance(setting, 41.5)
    message = to_binary(event, FORMAT)
    assert message.headers["ce-consentref"] == setting.consent
    assert message.headers["content-type"] == "application/json"
    r = post(setting, message.headers, message.body)
    assert r.status_code == 202, r.text
    assert r.json() == {"id": event.get_id(), "status": "accepted"}
    item = delivered(setting, event.get_id())
    assert item["purpose"] == "early_support"
    assert item["legal_ground"] == "consent"

    again = to_structured(event, FORMAT)
    r = post(setting, again.headers, again.body)
    assert r.status_code == 200, r.text


def test_binary_mode_rejections(setting: Setting) -> None:
    """A missing extension is named by its attribute; data that is not JSON is 415."""
    message = to_binary(attendance(setting), FORMAT)
    headers = {k: v for k, v in message.headers.items() if k != "ce-legalbasis"}
    r = post(setting, headers, message.body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "legalbasis" in r.json()["detail"]

    r = post(setting, {**message.headers, "content-type": "text/plain"}, b"hej")
    assert r.status_code == 415, r.text


def test_batched_mode_answers_per_event_in_order(setting: Setting) -> None:
    """Three fresh events, a repeat of the first, an invalid one and an id reused with another
    body: one result each, in order; the accepted ones reach the feed."""
    first, second, third = (attendance(setting, a) for a in (25.0, 35.0, 45.0))
    invalid = attendance(setting, 150.0)  # absence over 100 %
    clash = CloudEvent(
        dict(first.get_attributes()),
        {"period_start": "2026-10-01", "period_end": "2026-10-31", "absence_percent": 99.0},
    )
    body = batch_body(first, second, third, first, invalid, clash)
    r = post(setting, {"content-type": BATCH}, body)
    assert r.status_code == 200, r.text
    results = r.json()
    assert [x["status"] for x in results] == [
        "accepted",
        "accepted",
        "accepted",
        "duplicate",
        "rejected",
        "rejected",
    ]
    assert [x["id"] for x in results] == [
        e.get_id() for e in (first, second, third, first, invalid, clash)
    ]
    assert results[4]["problem"]["status"] == 422
    assert results[4]["problem"]["errors"][0]["pointer"] == "/data/absence_percent"
    assert results[5]["problem"]["status"] == 409
    for event in (first, second, third):
        delivered(setting, event.get_id())

    # The same batch again: every event a repeat, nothing new.
    r = post(setting, {"content-type": BATCH}, batch_body(first, second, third))
    assert [x["status"] for x in r.json()] == ["duplicate"] * 3


def test_batch_bounds(samsyn: Samsyn, setting: Setting) -> None:
    """Over 100 events is 413 for the whole batch and nothing is written; not an array is 422."""
    events = [attendance(setting) for _ in range(101)]
    r = post(setting, {"content-type": BATCH}, batch_body(*events))
    assert r.status_code == 413, r.text
    status = setting.skola.call("GET", f"/v1/events/{events[0].get_id()}")
    assert status.status_code == 404
    r = post(setting, {"content-type": BATCH}, json.dumps({"id": "x"}).encode())
    assert r.status_code == 422, r.text
    # An event over the single event's limit (64 KiB) is rejected alone; the others go.
    fits, also = attendance(setting), attendance(setting)
    large = attendance(setting, note="ö" * (32 * 1024))  # 64 KiB of UTF-8, and the rest
    r = post(setting, {"content-type": BATCH}, batch_body(fits, large, also))
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()] == ["accepted", "rejected", "accepted"]
    assert r.json()[1]["problem"]["status"] == 413
    assert "65536 bytes" in r.json()[1]["problem"]["detail"]


def test_feed_as_cloudevents(setting: Setting) -> None:
    """The feed with Accept: application/cloudevents-batch+json gives the same items, each one
    a CloudEvent the SDK reads; the next cursor is a header; JSON stays the default."""
    event = attendance(setting, 60.0)
    message = to_binary(event, FORMAT)
    assert post(setting, message.headers, message.body).status_code == 202
    item = delivered(setting, event.get_id())

    plain = setting.eh.call("GET", "/v1/feed", params={"limit": 500})
    assert plain.headers["content-type"] == "application/json"
    r = setting.eh.call("GET", "/v1/feed", params={"limit": 500}, headers={"Accept": BATCH})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == BATCH
    assert r.headers["samsyn-next-cursor"] == plain.json()["next"]
    received = [FORMAT.read(None, json.dumps(e)) for e in r.json()]
    assert [e.get_id() for e in received] == [i["delivery_id"] for i in plain.json()["items"]]
    (mine,) = [e for e in received if e.get_id() == item["delivery_id"]]
    attributes = mine.get_attributes()
    assert attributes["type"] == "se.backabarnet.attendance.flagged.v1"
    assert attributes["subject"] == setting.barn
    assert attributes["eventid"] == event.get_id()
    assert attributes["sourcekind"] == "school"
    assert attributes["legalground"] == "consent"
    assert attributes["purpose"] == "early_support"
    assert mine.get_data() == item["data"]

    after = setting.eh.call(
        "GET",
        "/v1/feed",
        params={"after": r.headers["samsyn-next-cursor"]},
        headers={"Accept": BATCH},
    )
    assert after.json() == []


def test_ids_are_per_mode_idempotency_keys(setting: Setting) -> None:
    """A batch and a single publish share the ledger: an id first sent alone is a duplicate in
    a batch."""
    event = attendance(setting)
    message = to_structured(event, FORMAT)
    assert post(setting, message.headers, message.body).status_code == 202
    r = post(setting, {"content-type": BATCH}, batch_body(event))
    assert r.json() == [{"id": event.get_id(), "status": "duplicate"}]
