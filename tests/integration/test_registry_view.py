"""The router's registry view on the real stack (issue 18): every consent or relationship change
answered before an event is published is in force when that event is decided, with no pause
between the two calls (``broker/router/registry_view.py`` says why this holds)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kit import Org, Samsyn, child

pytestmark = pytest.mark.integration

ATTENDANCE = {"period_start": "2026-10-01", "period_end": "2026-10-31", "absence_percent": 21.0}
SCOPE = {
    "from_kinds": ["school"],
    "to_kinds": ["student_health"],
    "categories": ["attendance"],
    "purposes": ["early_support"],
}
ROUNDS = 5


def _published(skola: Org, barn: str, consent: str) -> dict[str, Any]:
    """Publish a consented attendance event and wait for its routing."""
    env = skola.envelope(
        barn, "attendance.flagged", ATTENDANCE, purpose="early_support", basis="consent"
    )
    return skola.publish({**env, "consentref": consent})


def _shared_with(status: dict[str, Any], org: Org) -> list[bool]:
    return [r["shared"] for r in status["recipients"] if r["org"] == org.id]


def test_a_withdrawal_stops_the_very_next_event(samsyn: Samsyn) -> None:
    """Round after round: a consent given and at once relied on shares; withdrawn, the event
    published right after the withdrawal's answer is shared with no one."""
    skola = samsyn.org("school", "1443")
    eh = samsyn.org("student_health", "1443")
    for _ in range(ROUNDS):
        barn = child(9)
        skola.relate(barn, "enrolled")
        eh.relate(barn, "enrolled")
        consent = skola.consent(barn, SCOPE)
        assert _shared_with(_published(skola, barn, consent), eh) == [True]
        skola.withdraw(consent)
        assert _shared_with(_published(skola, barn, consent), eh) == [False]


def test_a_relationship_counts_from_its_answer_to_its_end(samsyn: Samsyn) -> None:
    """A relationship declared makes its organisation a candidate for the next event at once;
    ended, the organisation is no candidate for the event published right after."""
    skola = samsyn.org("school", "1444")
    eh = samsyn.org("student_health", "1444")
    for _ in range(ROUNDS):
        barn = child(8)
        skola.relate(barn, "enrolled")
        consent = skola.consent(barn, SCOPE)
        assert _shared_with(_published(skola, barn, consent), eh) == []
        rel = eh.relate(barn, "enrolled")
        assert _shared_with(_published(skola, barn, consent), eh) == [True]
        ended = eh.call("POST", f"/v1/relationships/{rel}/end")
        assert ended.status_code == 200, ended.text
        assert _shared_with(_published(skola, barn, consent), eh) == []
