"""What one event or audit record adds to the follow-up: counts, and a child's own milestones.

The counts (``Hit``) carry a measure, a moment, a municipality and the breakdowns; nothing about
the child. Whether the child is new to a cell (for the counts of distinct children), when its
first concern, barnteam, plan and support decision were, and which attendance flags still wait
for a support decision: that lives in the child's ``Ledger``, which the store keeps encrypted
and deletes when its time is up (see ``broker/followup/store.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from broker.followup.catalogue import (
    ALL,
    AUDIT_MEASURES,
    DAYS,
    EVENT_MEASURES,
    NONE,
    TOTAL,
    age_band,
    early_measure,
    periods,
)
from broker.subjects.personnummer import InvalidPersonnummer, Personnummer
from broker.times import rfc3339

FOLLOW_UP_WITHIN = timedelta(days=30)
EVENT_MILESTONES = {
    "se.backabarnet.barnteam.convened.v1": "barnteam",
    "se.backabarnet.plan.updated.v1": "plan",
    "se.backabarnet.support.decided.v1": "support",
}
CONCERN = "se.backabarnet.concern.raised.v1"
FLAG = "se.backabarnet.attendance.flagged.v1"
SUPPORT = "se.backabarnet.support.decided.v1"

# (measure, period, municipality or ALL, dimension or TOTAL, value or TOTAL)
StoreKey = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Hit:
    measure: str
    at: datetime
    area: str
    cols: tuple[tuple[str, str], ...] = ()
    year_only: bool = False  # the "how early" frequency tables are per school year

    def cells(self) -> list[StoreKey]:
        month, quarter, year = periods(self.at)
        ps = (year,) if self.year_only else (month, quarter, year)
        return [
            (self.measure, p, a, d, v)
            for p in ps
            for a in (self.area, ALL)
            for d, v in ((TOTAL, TOTAL), *self.cols)
        ]


@dataclass
class Ledger:
    """One child's follow-up state; only ever stored encrypted."""

    seen: set[str] = field(default_factory=set)  # facts already counted (at-least-once input)
    counted: set[str] = field(default_factory=set)  # cells the child already counts in
    first: dict[str, str] = field(default_factory=dict)  # milestone -> ISO time
    concern_area: str | None = None
    flags: list[tuple[str, str, str]] = field(default_factory=list)  # (ISO time, area, band)
    last: str | None = None  # the latest moment seen, for retention

    def dumps(self) -> bytes:
        return json.dumps(
            {
                "seen": sorted(self.seen),
                "counted": sorted(self.counted),
                "first": self.first,
                "concern_area": self.concern_area,
                "flags": self.flags,
                "last": self.last,
            }
        ).encode()

    @classmethod
    def loads(cls, raw: bytes) -> Ledger:
        d = json.loads(raw)
        return cls(
            seen=set(d["seen"]),
            counted=set(d["counted"]),
            first=dict(d["first"]),
            concern_area=d["concern_area"],
            flags=[(t, a, b) for t, a, b in d["flags"]],
            last=d["last"],
        )

    def new_fact(self, fact_id: str) -> bool:
        h = _short(fact_id)
        if h in self.seen:
            return False
        self.seen.add(h)
        return True

    def first_time_in(self, key: StoreKey) -> bool:
        h = _short("\x1f".join(key))
        if h in self.counted:
            return False
        self.counted.add(h)
        return True

    def touch(self, at: datetime) -> None:
        if self.last is None or at.isoformat() > self.last:
            self.last = at.isoformat()


def add(deltas: dict[StoreKey, list[int]], hits: list[Hit], ledger: Ledger) -> None:
    """Add hits to running counts: [events, distinct children] per cell."""
    for hit in hits:
        for key in hit.cells():
            delta = deltas.setdefault(key, [0, 0])
            delta[0] += 1
            delta[1] += ledger.first_time_in(key)


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _time(raw: str | None, fallback: datetime) -> datetime:
    if not raw:
        return fallback
    return rfc3339(raw)


def from_event(
    record: dict[str, Any], ledger: Ledger, accepted: datetime, source_municipality: str | None
) -> list[Hit]:
    """The hits of one accepted event (an ``events.v1`` record, its envelope opened); updates the
    child's ledger. It counts in the municipality the event names (the ``municipality``
    extension), else its source organisation's, as the router places a report."""
    envelope = record["envelope"]
    measure = EVENT_MEASURES.get(envelope["type"])
    if measure is None or not ledger.new_fact(f"event/{record['source_org']}/{envelope['id']}"):
        return []
    at = _time(envelope.get("time"), accepted)
    ledger.touch(at)
    area = envelope.get("municipality") or source_municipality or NONE
    try:
        band = age_band(Personnummer(envelope["subject"]).age_on(at.date()))
    except (InvalidPersonnummer, ValueError):
        band = None  # a birth date after the event's time: counted without an age
    cols: list[tuple[str, str]] = [("age", band)] if band else []
    data = envelope["data"]
    if measure == "concerns":
        cols += [("area", a) for a in data.get("areas", [])]
        cols += [("level", str(data["level"]))] if "level" in data else []
    hits = [Hit(measure, at, area, tuple(cols))]
    t = envelope["type"]
    if t == CONCERN:
        first = ledger.first.get("concern")
        if first is None or at.isoformat() < first:
            ledger.first["concern"] = at.isoformat()
            ledger.concern_area = area
    elif t == FLAG and band is not None:
        ledger.flags.append((at.isoformat(), area, band))
    if t == SUPPORT:
        hits += _flags_followed(ledger, at)
    milestone = EVENT_MILESTONES.get(t)
    if milestone and milestone not in ledger.first:
        ledger.first[milestone] = at.isoformat()
        concern = ledger.first.get("concern")
        if concern is not None and at >= datetime.fromisoformat(concern):
            days = (at - datetime.fromisoformat(concern)).days
            hits.append(
                Hit(
                    early_measure(milestone),
                    at,
                    ledger.concern_area or NONE,
                    ((DAYS, str(days)),),
                    year_only=True,
                )
            )
    return hits


def _flags_followed(ledger: Ledger, at: datetime) -> list[Hit]:
    """A support decision follows up every attendance flag of the last 30 days, once."""
    hits, waiting = [], []
    for raw, area, band in ledger.flags:
        flagged = datetime.fromisoformat(raw)
        if flagged <= at <= flagged + FOLLOW_UP_WITHIN:
            hits.append(Hit("flags_followed", flagged, area, (("age", band),)))
        elif at < flagged:
            waiting.append((raw, area, band))
    ledger.flags = waiting
    return hits


def from_audit(record: dict[str, Any], ledger: Ledger, municipality: str | None) -> list[Hit]:
    """The hits of one audit record: sharing decisions, consents, nödöppningar."""
    at = _time(record.get("time"), datetime.fromisoformat("1970-01-01T00:00:00+00:00"))
    action, outcome = record["action"], record["outcome"]
    area = municipality or NONE
    if action == "decision":
        if not ledger.new_fact(f"audit/{record['record_id']}"):
            return []
        ledger.touch(at)
        ground = record.get("legal_ground") or "none"
        return [Hit("decisions", at, area, (("ground_outcome", f"{ground}:{outcome}"),))]
    measure = AUDIT_MEASURES.get((action, outcome))
    if measure is None:
        return []
    # A nödöppning writes a record per event it opened: count the opening, once a day per org.
    fact = (
        f"emergency/{record['actor_org']}/{at.date()}"
        if measure == "emergency_access"
        else f"audit/{record['record_id']}"
    )
    if not ledger.new_fact(fact):
        return []
    ledger.touch(at)
    return [Hit(measure, at, area)]
