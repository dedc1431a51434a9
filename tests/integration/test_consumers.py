"""The consumer side on the real stack: withdrawal notices, owner notices, emergency access,
webhook pushes, and that no organisation can reach another's items."""

from __future__ import annotations

import base64
import json
from itertools import permutations
from typing import Any

import pytest

from tests.kit import (
    Org,
    Samsyn,
    WebhookReceiver,
    audit_for,
    child,
    eventually,
    signature_valid,
)

pytestmark = pytest.mark.integration

WITHDRAWN = "se.backabarnet.consent.withdrawn.v1"
ACCESS = "se.backabarnet.access.notice.v1"
EMERGENCY = "se.backabarnet.emergency.notice.v1"
ITEM_KEYS = {
    "delivery_id",
    "event_id",
    "type",
    "subject",
    "time",
    "source_kind",
    "purpose",
    "legal_ground",
    "statute",
    "data",
}
ATTENDANCE = {
    "period_start": "2026-10-01",
    "period_end": "2026-10-31",
    "absence_percent": 23.5,
    "unexcused_percent": 9.0,
}


def consent_for(source: Org, subject: str, to_kinds: list[str], categories: list[str]) -> str:
    return source.consent(
        subject,
        {
            "from_orgs": [source.id],
            "to_kinds": to_kinds,
            "categories": categories,
            "purposes": ["early_support"],
        },
    )


def delivery_id(org: Org, event: dict[str, Any]) -> str:
    """The id of the one delivery of ``event`` in ``org``'s feed (reading the feed)."""
    (item,) = [i for i in org.feed() if i["event_id"] == event["id"]]
    return str(item["delivery_id"])


def without_instance(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "instance"}


def test_withdrawal_notifies_recipients_and_stops_sharing(samsyn: Samsyn) -> None:
    """Withdrawing a consent puts a consent.withdrawn notice naming the consent and the
    delivery in the recipient's feed; an event published under it afterwards reaches no one;
    the child view drops the withdrawn slice and keeps the slice shared on another ground."""
    barn = child(10)
    skola, vc, soc = (
        samsyn.org("school", "1492"),
        samsyn.org("health"),
        samsyn.org("social_services", "1492"),
    )
    skola.relate(barn, "enrolled")
    vc.relate(barn, "listed")
    soc.relate(barn, "case_open")
    consent = consent_for(skola, barn, ["health"], ["attendance"])
    attendance = skola.envelope(
        barn,
        "attendance.flagged",
        ATTENDANCE,
        purpose="early_support",
        basis="consent",
        consent=consent,
    )
    skola.publish(attendance)
    delivered = delivery_id(vc, attendance)
    concern = soc.envelope(
        barn,
        "concern.raised",
        {"areas": ["omsorg"], "level": 2},
        purpose="early_support",
        basis="care_support_u18",
    )
    soc.publish(concern)
    before = vc.call("GET", f"/v1/children/{barn}")
    assert before.status_code == 200, before.text
    assert {s["type"] for s in before.json()["slices"]} == {
        "se.backabarnet.attendance.flagged.v1",
        "se.backabarnet.concern.raised.v1",
    }

    skola.withdraw(consent)

    (notice,) = vc.wait_feed(lambda i: i["type"] == WITHDRAWN)
    assert set(notice) == ITEM_KEYS
    assert notice["data"] == {"consent_id": consent, "delivery_ids": [delivered]}
    assert notice["subject"] == barn
    late = skola.envelope(
        barn,
        "attendance.flagged",
        ATTENDANCE,
        purpose="early_support",
        basis="consent",
        consent=consent,
    )
    status = skola.publish(late)
    assert [r["shared"] for r in status["recipients"] if r["org"] == vc.id] == [False]
    assert not [i for i in vc.feed() if i["event_id"] == late["id"]]
    after = vc.call("GET", f"/v1/children/{barn}")
    assert after.status_code == 200, after.text
    assert [(s["type"], s["event_id"]) for s in after.json()["slices"]] == [
        ("se.backabarnet.concern.raised.v1", concern["id"])
    ]


def test_reading_sensitive_delivery_notifies_its_source(samsyn: Samsyn) -> None:
    """When social services first reads a health contact shared with it under care_support_u18,
    the health organisation's feed gets one access notice with delivery_id, event_id,
    reader_org, categories and read_at; reading again adds none, and reading a delivery with
    only non-sensitive categories (attendance) notifies no one."""
    barn = child(12)
    vc, soc, skola = (
        samsyn.org("health"),
        samsyn.org("social_services", "1460"),
        samsyn.org("school", "1460"),
    )
    vc.relate(barn, "listed")
    soc.relate(barn, "case_open")
    skola.relate(barn, "enrolled")
    contact = vc.envelope(
        barn,
        "health.contact",
        {"service": "bvc", "reason_area": "halsa", "referral": True},
        purpose="early_support",
        basis="care_support_u18",
    )
    vc.publish(contact)
    consent = consent_for(skola, barn, ["social_services"], ["attendance"])
    attendance = skola.envelope(
        barn,
        "attendance.flagged",
        ATTENDANCE,
        purpose="early_support",
        basis="consent",
        consent=consent,
    )
    skola.publish(attendance)
    assert not [i for i in vc.feed() if i["type"] == ACCESS]

    (read,) = [i for i in soc.feed() if i["event_id"] == contact["id"]]
    assert read["data"] == {"service": "bvc", "reason_area": "halsa", "referral": True}
    delivered = read["delivery_id"]
    assert soc.call("GET", f"/v1/children/{barn}").status_code == 200
    soc.feed()

    (notice,) = [i for i in vc.feed() if i["type"] == ACCESS]
    assert set(notice) == ITEM_KEYS
    assert notice["event_id"] == contact["id"]
    data = notice["data"]
    assert set(data) == {"delivery_id", "event_id", "reader_org", "categories", "read_at"}
    assert data["delivery_id"] == delivered
    assert data["event_id"] == contact["id"]
    assert data["reader_org"] == soc.id
    assert data["categories"] == ["health", "identity"]
    assert data["read_at"].endswith("Z")
    assert not [i for i in skola.feed() if i["type"] == ACCESS]


def test_emergency_access(samsyn: Samsyn) -> None:
    """Nödöppning: social services with an open case gets every source's information under the
    emergency ground (health_detail included, which care_support_u18 withheld); each access is
    an emergency_access audit record and each source gets an emergency notice. A school gets
    403 alike for a child with records and for an unknown child, and its refusal is audited."""
    barn = child(9)
    skola, vc, soc = (
        samsyn.org("school", "1438"),
        samsyn.org("health"),
        samsyn.org("social_services", "1438"),
    )
    skola.relate(barn, "enrolled")
    vc.relate(barn, "listed")
    soc.relate(barn, "case_open")
    consent = consent_for(skola, barn, ["health"], ["wellbeing"])
    wellbeing = skola.envelope(
        barn,
        "wellbeing.assessed",
        {"ratings": {"trygghet": 1, "halsa": 3}},
        purpose="early_support",
        basis="consent",
        consent=consent,
    )
    skola.publish(wellbeing)
    contact = vc.envelope(
        barn,
        "health.contact",
        {"service": "bup", "reason_area": "trygghet", "diagnosis_codes": ["F43.1"]},
        purpose="early_support",
        basis="care_support_u18",
    )
    vc.publish(contact)
    (routine,) = [i for i in soc.feed() if i["event_id"] == contact["id"]]
    assert "diagnosis_codes" not in routine["data"]
    reason = "Barnet har inte kommit hem och är i akut fara enligt polisen."

    r = soc.call("POST", f"/v1/children/{barn}/emergency-access", json={"reason": reason})

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["subject"] == barn
    assert body["legal_ground"] == "emergency"
    slices = {s["event_id"]: s for s in body["slices"]}
    assert set(slices) == {wellbeing["id"], contact["id"]}
    assert slices[wellbeing["id"]]["data"] == {"ratings": {"trygghet": 1, "halsa": 3}}
    assert slices[contact["id"]]["data"]["diagnosis_codes"] == ["F43.1"]
    for source, env in ((skola, wellbeing), (vc, contact)):
        (notice,) = [i for i in source.feed() if i["type"] == EMERGENCY]
        assert notice["event_id"] == env["id"]
        assert notice["data"]["reader_org"] == soc.id
        assert notice["data"]["reason"] == reason
        assert "notify_source" in notice["data"]["obligations"]
        (audit,) = audit_for(samsyn, env["id"], 1, action="emergency_access")
        assert audit["actor_org"] == soc.id
        assert audit["outcome"] == "ok"
        assert audit["legal_ground"] == "emergency"
        assert f"reason:{reason}" in audit["reasons"]

    refused = skola.call("POST", f"/v1/children/{barn}/emergency-access", json={"reason": reason})
    unknown = skola.call(
        "POST", f"/v1/children/{child(9)}/emergency-access", json={"reason": reason}
    )
    assert refused.status_code == unknown.status_code == 403, refused.text
    assert without_instance(refused.json()) == without_instance(unknown.json())
    auditor = samsyn.org("oversight", scopes=["audit:read"])
    query = {"action": "emergency_access", "org": skola.id, "outcome": "refused"}

    def sealed() -> list[dict[str, Any]]:
        r = auditor.call("GET", "/v1/audit/records", params=query)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items if len(items) >= 2 else []

    assert [i["reasons"][0] for i in eventually(sealed, "sealed refusals")] == [
        "recipient_kind_not_allowed"
    ] * 2


def test_webhook_push_is_signed_and_retried(samsyn: Samsyn) -> None:
    """A registered webhook gets each new feed item as the feed shows it, POSTed with a
    Samsyn-Signature (HMAC-SHA256 over "<t>." + body with the secret from registration) and a
    Samsyn-Delivery-Id; answers 500 twice, then 200, and gets the same item three times under
    the same id; a wrong secret does not verify; the push is audited as a read; GET never shows
    the secret, and DELETE stops it."""
    barn = child(11)
    skola, vc = samsyn.org("school", "1443"), samsyn.org("health")
    skola.relate(barn, "enrolled")
    vc.relate(barn, "listed")
    assert vc.call("GET", "/v1/webhook").status_code == 404

    with WebhookReceiver(500, 500) as receiver:
        r = vc.call("PUT", "/v1/webhook", json={"url": receiver.url})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        assert r.json()["url"] == receiver.url
        shown = vc.call("GET", "/v1/webhook")
        assert shown.status_code == 200, shown.text
        assert secret not in shown.text
        assert shown.json()["url"] == receiver.url
        consent = consent_for(skola, barn, ["health"], ["attendance"])
        env = skola.envelope(
            barn,
            "attendance.flagged",
            ATTENDANCE,
            purpose="early_support",
            basis="consent",
            consent=consent,
        )
        skola.publish(env)
        delivered = delivery_id(vc, env)

        pushes = receiver.wait(lambda p: p.headers["Samsyn-Delivery-Id"] == delivered, 3)

    assert [p.status for p in pushes] == [500, 500, 200]
    assert all(signature_valid(secret, p) for p in pushes)
    assert not signature_valid(secret + "x", pushes[-1])
    assert {p.body for p in pushes} == {pushes[0].body}
    assert all(p.headers["Content-Type"] == "application/json" for p in pushes)
    (item,) = [i for i in vc.feed() if i["delivery_id"] == delivered]
    assert json.loads(pushes[0].body) == item
    assert len(audit_for(samsyn, env["id"], 3, action="webhook.push")) >= 3
    assert vc.call("GET", "/v1/webhook").json()["pending"] == 0

    assert vc.call("DELETE", "/v1/webhook").status_code == 204
    assert vc.call("GET", "/v1/webhook").status_code == 404
    assert vc.call("DELETE", "/v1/webhook").status_code == 404


def test_webhook_url_rules(samsyn: Samsyn) -> None:
    """The webhook URL must be http(s) with a host and no credentials (the test deployment
    allows plain http to loopback); it needs the feed:read scope."""
    vc = samsyn.org("health")
    for url in ("ftp://127.0.0.1/x", "http:///nohost", "https://user:pw@example.org/hook"):
        r = vc.call("PUT", "/v1/webhook", json={"url": url})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["errors"][0]["pointer"] == "/url"
    publisher = samsyn.org("school", "1443", scopes=["events:publish"])
    r = publisher.call("PUT", "/v1/webhook", json={"url": "https://example.org/hook"})
    assert r.status_code == 403, r.text


def test_no_organisation_reaches_anothers_items(samsyn: Samsyn) -> None:
    """Five organisations, each related to its own child and each receiving a delivery about
    it: for every pair (A, B) A's feed holds nothing of B's (no delivery id, no child number);
    A's view of B's child is 404 with the body of an unknown child; A's status of B's event is
    404 like an unknown event; B's cursors only position A in A's own feed; and a guessed
    delivery id is no cursor."""
    kinds = {
        "school": "enrolled",
        "health": "listed",
        "social_services": "case_open",
        "police": "case_open",
        "student_health": "enrolled",
    }
    source = samsyn.org("school", "1462")
    orgs = {kind: samsyn.org(kind, "1462") for kind in kinds}
    children: dict[str, str] = {}
    deliveries: dict[str, str] = {}
    published: dict[str, str] = {}
    for kind, org in orgs.items():
        barn = children[kind] = child(10)
        source.relate(barn, "enrolled")
        org.relate(barn, kinds[kind])
        consent = consent_for(source, barn, [kind], ["concern"])
        env = source.envelope(
            barn,
            "concern.raised",
            {"areas": ["trygghet"], "level": 3},
            purpose="early_support",
            basis="consent",
            consent=consent,
        )
        source.publish(env)
        deliveries[kind] = delivery_id(org, env)
        own = org.envelope(
            barn,
            "concern.raised",
            {"areas": ["fritid"], "level": 1},
            purpose="social_services_inquiry",
            basis="social_services_inquiry",
        )
        org.publish(own)
        published[kind] = own["id"]
    feeds = {kind: org.feed() for kind, org in orgs.items()}
    for kind, feed in feeds.items():
        assert [i["delivery_id"] for i in feed] == [deliveries[kind]]

    for a, b in permutations(orgs, 2):
        org = orgs[a]
        text = json.dumps(feeds[a])
        assert deliveries[b] not in text, (a, b)
        assert children[b] not in text, (a, b)
        view = org.call("GET", f"/v1/children/{children[b]}")
        unknown = org.call("GET", f"/v1/children/{child(10)}")
        assert view.status_code == unknown.status_code == 404, (a, b, view.text)
        assert without_instance(view.json()) == without_instance(unknown.json())
        assert view.json()["instance"] == f"/v1/children/{children[b]}"
        status = org.call("GET", f"/v1/events/{published[b]}")
        assert status.status_code == 404, (a, b, status.text)
        assert org.call("GET", f"/v1/events/{published[a]}").status_code == 200
        first = orgs[b].call("GET", "/v1/feed", params={"limit": 1})
        cursor = first.json()["next"]
        page = org.call("GET", "/v1/feed", params={"after": cursor})
        assert page.status_code == 200, page.text
        assert {i["delivery_id"] for i in page.json()["items"]} <= {deliveries[a]}, (a, b)
        for after in (cursor, base64.urlsafe_b64encode(b"c1:0").decode().rstrip("=")):
            items = org.call("GET", "/v1/feed", params={"after": after}).json()["items"]
            assert all(i["subject"] == children[a] for i in items), (a, b)
        guessed = org.call("GET", "/v1/feed", params={"after": deliveries[b]})
        assert guessed.status_code == 422, guessed.text
