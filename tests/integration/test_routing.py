"""Routing on the real stack: one event, four candidates, exactly the expected slices and audit."""

from __future__ import annotations

import pytest

from tests.kit import Samsyn, audit_for, child

pytestmark = [pytest.mark.integration, pytest.mark.one_database]


def test_event_with_four_candidates(samsyn: Samsyn) -> None:
    """A school's consented attendance event reaches the health centre (banded) and student
    health (exact), not the police (out of consent scope) nor unrelated social services; each
    of the four decisions is in the audit trail with its reasons."""
    barn = child(10)
    skola = samsyn.org("school", "1492")
    vc = samsyn.org("health")
    eh = samsyn.org("student_health", "1492")
    polis = samsyn.org("police")
    soc = samsyn.org("social_services", "1492")
    skola.relate(barn, "enrolled")
    skola.relate(barn, "barnkontakt")
    vc.relate(barn, "listed")
    eh.relate(barn, "enrolled")
    polis.relate(barn, "case_open")
    soc.relate(barn, "case_open")
    consent = skola.consent(
        barn,
        {
            "from_kinds": ["school"],
            "to_kinds": ["health", "student_health", "social_services"],
            "categories": ["attendance"],
            "purposes": ["early_support"],
        },
    )
    env = skola.envelope(
        barn,
        "attendance.flagged",
        {
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
            "absence_percent": 23.5,
            "unexcused_percent": 9.0,
        },
        purpose="early_support",
        basis="consent",
        consent=consent,
    )
    status = skola.publish(env)
    outcome = {r["org"]: r for r in status["recipients"]}
    assert set(outcome) == {vc.id, eh.id, polis.id, soc.id}
    assert outcome[vc.id]["shared"] is True
    assert outcome[eh.id]["shared"] is True
    assert outcome[soc.id]["shared"] is True
    assert outcome[polis.id]["shared"] is False

    vc_items = [i for i in vc.feed() if i["event_id"] == env["id"]]
    assert len(vc_items) == 1
    assert vc_items[0]["data"]["absence_percent"] == "20-50"
    assert vc_items[0]["data"]["unexcused_percent"] == "<10"
    assert vc_items[0]["subject"] == barn
    assert vc_items[0]["legal_ground"] == "consent"
    eh_items = [i for i in eh.feed() if i["event_id"] == env["id"]]
    assert eh_items[0]["data"]["absence_percent"] == 23.5
    assert not [i for i in polis.feed() if i["event_id"] == env["id"]]

    records = audit_for(samsyn, env["id"], 4)
    by_org = {r["recipient_org"]: r for r in records}
    assert by_org[polis.id]["outcome"] == "deny"
    assert by_org[polis.id]["reasons"]
    assert by_org[polis.id]["categories_withheld"] == ["attendance"]
    assert by_org[vc.id]["outcome"] == "allow"
    assert by_org[vc.id]["policy_revision"]


def test_same_id_twice_is_one_record_and_other_body_conflicts(samsyn: Samsyn) -> None:
    """The event id is the idempotency key: a repeat answers 200 and delivers once; the same id
    with another body is 409."""
    barn = child(9)
    skola = samsyn.org("school", "1438")
    soc = samsyn.org("social_services", "1438")
    skola.relate(barn, "enrolled")
    env = skola.envelope(
        barn,
        "mandatory.report",
        {"areas": ["trygghet"], "urgency": "urgent", "description": "Fiktiv oro."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )
    first = skola.call("POST", "/v1/events", json=env)
    assert first.status_code == 202
    again = skola.call("POST", "/v1/events", json=env)
    assert again.status_code == 200
    assert again.json() == first.json()
    changed = {**env, "data": {**env["data"], "urgency": "normal"}}
    assert skola.call("POST", "/v1/events", json=changed).status_code == 409
    skola.wait_routed(env["id"])
    assert len([i for i in soc.feed() if i["event_id"] == env["id"]]) == 1
