"""What one event adds to the follow-up, and what a child's ledger remembers."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.followup.catalogue import ALL, DAYS, NONE, TOTAL, age_band, school_year
from broker.followup.store import LedgerTokens, open_ledger, seal_ledger
from broker.followup.tally import Ledger, StoreKey, add, from_audit, from_event
from broker.privacy.aead import new_data_key
from tests.unit.test_followup_disclosure import START, event, fictional, municipality_of


def run(*events: dict[str, Any]) -> tuple[dict[StoreKey, list[int]], Ledger]:
    ledger, deltas = Ledger(), dict[StoreKey, list[int]]()
    for ev in events:
        add(deltas, from_event(ev, ledger, START, municipality_of(ev)), ledger)
    return deltas, ledger


def test_two_concerns_of_one_child_are_two_events_from_one_child() -> None:
    deltas, _ = run(event(1, "1492", 3, "concern", 2, 0), event(1, "1492", 5, "concern", 3, 1))
    assert deltas[("concerns", "2025-07", "1492", TOTAL, TOTAL)] == [2, 1]
    assert deltas[("concerns", "2025/26", ALL, "level", "3")] == [1, 1]
    assert deltas[("concerns", "2025-Q3", "1492", "area", "halsa")] == [1, 1]


def test_an_event_counts_in_the_municipality_it_names_else_its_sources() -> None:
    named = event(2, "1492", 3, "concern", 2, 0)
    named["envelope"]["municipality"] = "1460"
    deltas, _ = run(named, event(3, NONE, 4, "concern", 2, 0))
    assert deltas[("concerns", "2025-07", "1460", TOTAL, TOTAL)] == [1, 1]
    assert ("concerns", "2025-07", "1492", TOTAL, TOTAL) not in deltas
    assert deltas[("concerns", "2025-07", NONE, TOTAL, TOTAL)] == [1, 1]


def test_the_same_event_read_twice_counts_once() -> None:
    ev = event(1, "1492", 3, "concern", 2, 0)
    deltas, _ = run(ev, ev)
    assert deltas[("concerns", "2025-07", "1492", TOTAL, TOTAL)] == [1, 1]


def test_days_from_first_concern_to_first_barnteam_in_the_concerns_municipality() -> None:
    barnteam = event(1, "1438", 13, "concern", 1, 0)
    barnteam["envelope"]["type"] = "se.backabarnet.barnteam.convened.v1"
    barnteam["envelope"]["id"] = "barnteam-1"
    deltas, ledger = run(event(1, "1492", 3, "concern", 2, 0), barnteam, {**barnteam})
    assert deltas[("days_to_barnteam", "2025/26", "1492", DAYS, "10")] == [1, 1]
    assert deltas[("days_to_barnteam", "2025/26", ALL, TOTAL, TOTAL)] == [1, 1]
    assert set(ledger.first) == {"concern", "barnteam"}


def test_an_attendance_flag_is_followed_by_support_within_30_days_only() -> None:
    def support(day: int, n: int) -> dict[str, Any]:
        ev = event(1, "1492", day, "flag", 1, 0)
        ev["envelope"]["type"] = "se.backabarnet.support.decided.v1"
        ev["envelope"]["id"] = f"support-{n}"
        ev["envelope"]["data"] = {"measure": "extra_adaptations"}
        return ev

    deltas, _ = run(event(1, "1492", 10, "flag", 1, 0), support(30, 1))
    assert deltas[("flags_followed", "2025-07", "1492", TOTAL, TOTAL)] == [1, 1]
    late, _ = run(event(1, "1492", 10, "flag", 1, 0), support(45, 2))
    assert not any(k[0] == "flags_followed" for k in late)


def test_decisions_count_by_ground_and_outcome_in_the_sources_municipality() -> None:
    ledger, deltas = Ledger(), dict[StoreKey, list[int]]()
    rec = {
        "record_id": "r1",
        "time": "2025-09-02T10:00:00+00:00",
        "action": "decision",
        "outcome": "deny",
        "legal_ground": None,
        "actor_org": "amal-skola",
        "subject_pseudonym": "p",
    }
    add(deltas, from_audit(rec, ledger, "1492"), ledger)
    add(deltas, from_audit(rec, ledger, "1492"), ledger)
    assert deltas[("decisions", "2025-09", "1492", "ground_outcome", "none:deny")] == [1, 1]


def test_age_bands_and_school_years() -> None:
    assert [age_band(a) for a in (0, 5, 6, 12, 13, 17, 18, 20, 21)] == [
        "0-5",
        "0-5",
        "6-9",
        "10-12",
        "13-15",
        "16-17",
        "18-20",
        "18-20",
        "21+",
    ]
    assert school_year(START.date()) == "2025/26"
    assert fictional(3)[8:11] == "983"


def test_a_ledger_opens_only_under_the_childs_key_and_its_own_token() -> None:
    """Sealed under the child's data key and bound to its row: another row's token, another
    child's key, or no key at all (shredded) give a new, empty ledger: nothing of the old."""
    tokens = LedgerTokens(b"k" * 32)
    child_key, other_key = AESGCM(new_data_key()), AESGCM(new_data_key())
    _, ledger = run(event(1, "1492", 3, "concern", 2, 0))
    a, b = tokens.token("pseudo-a"), tokens.token("pseudo-b")
    assert a != b
    assert "pseudo" not in a
    sealed = seal_ledger(child_key, a, ledger)
    assert open_ledger(child_key, a, sealed).first == ledger.first
    for key, token in ((child_key, b), (other_key, a), (None, a)):
        assert open_ledger(key, token, sealed).first == {}
