"""Lawful sharing through the public API on the real stack (issue 15): what can never be routed
is refused at ingest, a report goes to its source's own social services, age limits hold on
every ground the law limits, nödöppning opens for an organisation without a relationship, and
the guardian's log extract names everyone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.kit import Org, Samsyn, audit_for, child, eventually

pytestmark = pytest.mark.integration

REPORT = {"areas": ["trygghet"], "urgency": "urgent", "description": "Barnet berättar om våld."}
CONTACT = {"service": "bup", "reason_area": "halsa", "diagnosis_codes": ["F32.1"]}


def refused(r: httpx.Response, reason: str) -> dict[str, Any]:
    """The answer is a 422 problem+json that names ``reason``."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert reason in {e["detail"] for e in body["errors"]}, body
    return body


def not_accepted(org: Org, event_id: str) -> None:
    """Nothing was written: the event is unknown to its own source."""
    assert org.call("GET", f"/v1/events/{event_id}").status_code == 404


def test_report_type_refused_under_other_grounds(samsyn: Samsyn) -> None:
    """A mandatory.report sent under consent or crime prevention would tell the police or the
    health centre that a report exists: refused at ingest (422, nothing written), as is another
    type sent under the reporting ground."""
    barn = child(12)
    skola = samsyn.org("school", "1471")
    polis = samsyn.org("police")
    samsyn.org("social_services", "1471")
    skola.relate(barn, "enrolled")
    polis.relate(barn, "case_open")
    consent = skola.consent(
        barn,
        {
            "from_kinds": ["school"],
            "to_kinds": ["police", "health"],
            "categories": ["concern", "concern_detail"],
            "purposes": ["early_support"],
        },
    )
    envs = [
        skola.envelope(
            barn,
            "mandatory.report",
            REPORT,
            purpose="early_support",
            basis="consent",
            consent=consent,
        ),
        skola.envelope(
            barn,
            "mandatory.report",
            REPORT,
            purpose="crime_prevention",
            basis="crime_prevention_u21",
        ),
        skola.envelope(
            barn,
            "concern.raised",
            {"areas": ["trygghet"], "level": 3},
            purpose="mandatory_report",
            basis="mandatory_report",
        ),
    ]
    for env in envs:
        body = refused(skola.call("POST", "/v1/events", json=env), "type_not_allowed_for_ground")
        assert body["errors"][0]["pointer"] == "/legalbasis"
        not_accepted(skola, env["id"])
    assert not [i for i in polis.feed() if i["subject"] == barn]


def test_age_limits_refused_at_ingest(samsyn: Samsyn) -> None:
    """The reporting duty and a social-services inquiry concern children: a 19-year-old's report
    or health detail is refused at ingest; the same for a 17-year-old goes through. Crime
    prevention stops at 21."""
    vuxen, barn = child(19), child(17)
    vc = samsyn.org("health")
    skola = samsyn.org("school", "1472")
    soc = samsyn.org("social_services", "1472")
    polis = samsyn.org("police")
    for subject in (vuxen, barn):
        soc.relate(subject, "case_open")
    for subject, status in ((vuxen, 422), (barn, 202)):
        inquiry = vc.envelope(
            subject,
            "health.contact",
            CONTACT,
            purpose="social_services_inquiry",
            basis="social_services_inquiry",
        )
        r = vc.call("POST", "/v1/events", json=inquiry)
        assert r.status_code == status, r.text
        report = skola.envelope(
            subject,
            "mandatory.report",
            REPORT,
            purpose="mandatory_report",
            basis="mandatory_report",
        )
        r = skola.call("POST", "/v1/events", json=report)
        assert r.status_code == status, r.text
        if status == 422:
            refused(r, "age_limit_exceeded")
            not_accepted(vc, inquiry["id"])
            not_accepted(skola, report["id"])
    (item,) = soc.wait_feed(lambda i: i["subject"] == barn and i["type"].endswith("contact.v1"))
    assert item["data"]["diagnosis_codes"] == ["F32.1"]
    assert not [i for i in soc.feed() if i["subject"] == vuxen]
    ung = child(21)
    env = polis.envelope(
        ung,
        "police.observation",
        {"kind": "risk_environment"},
        purpose="crime_prevention",
        basis="crime_prevention_u21",
    )
    refused(polis.call("POST", "/v1/events", json=env), "age_limit_exceeded")


def test_report_goes_to_the_sources_own_social_services(samsyn: Samsyn) -> None:
    """A school's report goes to its own municipality's social services; it cannot redirect it
    with the municipality extension (422). The police, who have no municipality, name one; a
    report that can reach no one (no municipality, or one without social services) is refused
    at ingest instead of being accepted to vanish."""
    barn = child(8)
    skola = samsyn.org("school", "1473")
    hemma = samsyn.org("social_services", "1473")
    annan = samsyn.org("social_services", "1474")
    polis = samsyn.org("police")

    redirected = skola.envelope(
        barn,
        "mandatory.report",
        REPORT,
        purpose="mandatory_report",
        basis="mandatory_report",
        municipality="1474",
    )
    body = refused(
        skola.call("POST", "/v1/events", json=redirected), "municipality_not_for_this_source"
    )
    assert body["errors"][0]["pointer"] == "/municipality"
    not_accepted(skola, redirected["id"])

    report = skola.envelope(
        barn, "mandatory.report", REPORT, purpose="mandatory_report", basis="mandatory_report"
    )
    outcome = {r["org"]: r for r in skola.publish(report)["recipients"]}
    assert outcome[hemma.id]["shared"] is True
    assert annan.id not in outcome
    # The delivery and the decision record carry the statute the disclosure rests on.
    (item,) = hemma.wait_feed(lambda i: i["event_id"] == report["id"])
    assert item["statute"].startswith("OSL 10 kap 28 §")
    (decided,) = audit_for(samsyn, report["id"], 1, recipient_org=hemma.id)
    assert decided["statute"] == item["statute"]
    assert decided["review"] is False

    from_police = polis.envelope(
        barn,
        "mandatory.report",
        REPORT,
        purpose="mandatory_report",
        basis="mandatory_report",
        municipality="1474",
    )
    outcome = {r["org"]: r for r in polis.publish(from_police)["recipients"]}
    assert outcome[annan.id]["shared"] is True
    assert hemma.id not in outcome

    for extra in ({}, {"municipality": "1475"}):
        lost = polis.envelope(
            barn,
            "mandatory.report",
            REPORT,
            purpose="mandatory_report",
            basis="mandatory_report",
            **extra,
        )
        refused(polis.call("POST", "/v1/events", json=lost), "report_unreachable")
        not_accepted(polis, lost["id"])


def emergency(org: Org, subject: str, reason: str) -> httpx.Response:
    return org.call("POST", f"/v1/children/{subject}/emergency-access", json={"reason": reason})


def test_emergency_access_without_relationship_and_extract(samsyn: Samsyn) -> None:
    """Nödöppning opens for a police patrol with no earlier relationship to the child (that is
    what it is for); the access carries its stated reason in the trail. The guardian's log
    extract names the organisation of every entry (the delivery, the read, the granted and
    the refused nödöppning), whether it was granted, and the stated reasons."""
    barn = child(11)
    skola = samsyn.org("school", "1476")
    soc = samsyn.org("social_services", "1476")
    patrull = samsyn.org("police")
    skola.relate(barn, "enrolled")
    soc.relate(barn, "case_open")
    concern = skola.envelope(
        barn,
        "concern.raised",
        {"areas": ["trygghet"], "level": 4, "description": "Har inte kommit till skolan."},
        purpose="social_services_inquiry",
        basis="social_services_inquiry",
    )
    skola.publish(concern)
    reason = "Barnet är försvunnet sedan i går kväll; polisen söker med patrull."

    r = emergency(patrull, barn, reason)

    assert r.status_code == 200, r.text
    (slice_,) = r.json()["slices"]
    assert slice_["event_id"] == concern["id"]
    assert slice_["data"]["description"] == "Har inte kommit till skolan."
    (notice,) = skola.wait_feed(lambda i: i["type"] == "se.backabarnet.emergency.notice.v1")
    assert notice["data"]["reader_org"] == patrull.id
    (granted,) = audit_for(samsyn, concern["id"], 1, action="emergency_access")
    assert granted["actor_org"] == patrull.id
    assert granted["outcome"] == "ok"
    assert f"reason:{reason}" in granted["reasons"]
    # No explicit provision: the trail says so, and the access is an open review item.
    assert granted["statute"].startswith("ingen uttrycklig bestämmelse / no explicit provision")
    assert granted["review"] is True

    # A school may never open: its refusal is audited with its own stated reason.
    tried = "Vi vill veta vad som har hänt med eleven."
    assert emergency(skola, barn, tried).status_code == 403

    auditor = samsyn.org("oversight", scopes=["audit:read"])
    url = f"/v1/audit/subjects/{barn}/extract"

    def entries() -> list[dict[str, Any]]:
        r = auditor.call("GET", url)
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()["entries"]
        return found if any(e["organisation"] == skola.id for e in found) else []

    found = eventually(entries, "the refused nödöppning in the extract")
    assert all(e["organisation"] for e in found), found
    by_org = {(e["action"], e["organisation"]): e for e in found}
    assert by_org[("decision", soc.id)]["granted"] is True
    opened = by_org[("emergency_access", patrull.id)]
    assert opened["granted"] is True
    assert opened["stated_reason"] == reason
    refusal = by_org[("emergency_access", skola.id)]
    assert refusal["granted"] is False
    assert refusal["stated_reason"] == tried

    page = auditor.call("GET", url, params={"format": "html"})
    assert patrull.id in page.text
    assert skola.id in page.text
    assert "Nekad / Refused" in page.text
    assert reason in page.text


def test_who_consented_and_who_withdrew(samsyn: Samsyn) -> None:
    """A consent records each giver (both guardians here) and a withdrawal who withdrew; both
    are in the audit trail."""
    barn = child(7)
    skola = samsyn.org("school", "1477")
    scope = {
        "from_kinds": ["school"],
        "to_kinds": ["health"],
        "categories": ["concern"],
        "purposes": ["early_support"],
    }
    consent = skola.consent(barn, scope, given_by=("guardian", "second_guardian"))
    r = skola.call(
        "POST", f"/v1/consents/{consent}/withdraw", json={"withdrawn_by": "second_guardian"}
    )
    assert r.status_code == 200, r.text
    bad = skola.call("POST", f"/v1/consents/{consent}/withdraw", json={"withdrawn_by": "aunt"})
    assert bad.status_code == 422
    (created,) = audit_for(samsyn, None, 1, action="consent.create", actor_org=skola.id)
    assert {"guardian", "second_guardian"} <= set(created["reasons"])
    (withdrawn,) = audit_for(samsyn, None, 1, action="consent.withdraw", actor_org=skola.id)
    assert "withdrawn_by:second_guardian" in withdrawn["reasons"]
