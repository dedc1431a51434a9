"""`make demo`'s story, played against the test server, has the outcomes it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.demo.seed import seed
from broker.demo.story import (
    BUP,
    HEALTH_CENTRE,
    POLICE,
    SCHOOL,
    SOCIAL,
    STUDENT_HEALTH,
    StepResult,
    play,
)
from tests.kit import Samsyn

pytestmark = pytest.mark.integration


def data_of(step: StepResult, org: str, suffix: str) -> list[dict[str, object]]:
    return [i["data"] for i in step.received.get(org, []) if i["type"].endswith(suffix)]


def test_story_outcomes(samsyn: Samsyn, tmp_path: Path) -> None:
    """Each step of the Backa barnet story shares exactly what the rules allow: the barnteam
    gets the concern, BUP's diagnoses stay out, the health centre sees a band, the social case
    goes nowhere, the police share only the kind of observation, the report reaches social
    services only, and the withdrawal reaches every recipient."""
    clients = seed(
        samsyn.url, (samsyn.admin_id, samsyn.admin_secret), tmp_path / "clients.json", quiet=True
    )
    again = seed(
        samsyn.url, (samsyn.admin_id, samsyn.admin_secret), tmp_path / "clients.json", quiet=True
    )
    assert again == clients  # seeding is idempotent
    story = play(samsyn.url, clients, quiet=True)
    (_, concern, contact, attendance, social, police, report, withdrawal) = story.results

    for org in (STUDENT_HEALTH, HEALTH_CENTRE, BUP):
        assert data_of(concern, org, "concern.raised.v1")[0]["description"]
    assert POLICE not in concern.received

    assert data_of(contact, STUDENT_HEALTH, "health.contact.v1") == [
        {"service": "bup", "reason_area": "halsa", "referral": True}
    ]
    assert "diagnosis_codes" not in data_of(contact, HEALTH_CENTRE, "health.contact.v1")[0]
    assert SCHOOL not in contact.received

    assert (
        data_of(attendance, HEALTH_CENTRE, "attendance.flagged.v1")[0]["absence_percent"] == "20-50"
    )
    assert (
        data_of(attendance, STUDENT_HEALTH, "attendance.flagged.v1")[0]["absence_percent"] == 23.5
    )

    assert not [
        o
        for o, items in social.received.items()
        if any(i["type"].endswith("social.case.v1") for i in items)
    ]
    assert social.withheld

    for org in (SCHOOL, SOCIAL):
        assert data_of(police, org, "police.observation.v1") == [{"kind": "risk_environment"}]
    assert HEALTH_CENTRE not in police.received

    assert data_of(report, SOCIAL, "mandatory.report.v1")
    assert [
        o
        for o, items in report.received.items()
        if any(i["type"].endswith("mandatory.report.v1") for i in items)
    ] == [SOCIAL]

    told = {
        o
        for o, items in withdrawal.received.items()
        if any(i["type"].endswith("consent.withdrawn.v1") for i in items)
    }
    assert told == {STUDENT_HEALTH, HEALTH_CENTRE, BUP}
