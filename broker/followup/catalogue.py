"""What the follow-up counts and the fixed tables it publishes: periods, age bands, measures.

Everything a table may be broken down by is listed here with all its values, so every table
has the same rows and columns whatever the data, and nobody can ask for a cut of their own
(free filters are how two queries get differenced to single out a child).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

# Rows: the municipalities, plus events whose source has none (the region's health care, the
# police) unless the event named one, plus the whole cooperation.
ALL = "all"
NONE = "none"
TOTAL = "*"  # the column of a table's totals

AGE_BANDS = ("0-5", "6-9", "10-12", "13-15", "16-17", "18-20", "21+")
AREAS = ("trygghet", "halsa", "utveckling", "omsorg", "fritid", "respekt", "ansvar", "tillhorighet")
AREA_NAMES = {
    "trygghet": ("Trygghet", "Safe"),
    "halsa": ("Hälsa", "Healthy"),
    "utveckling": ("Utveckling", "Achieving"),
    "omsorg": ("Omsorg", "Nurtured"),
    "fritid": ("Fritid", "Active"),
    "respekt": ("Respekt", "Respected"),
    "ansvar": ("Ansvar", "Responsible"),
    "tillhorighet": ("Tillhörighet", "Included"),
}
LEVELS = ("1", "2", "3", "4")
GROUNDS = (
    "consent",
    "mandatory_report",
    "social_services_inquiry",
    "crime_prevention_u21",
    "care_support_u18",
    "emergency",
    "none",
)
GROUND_OUTCOMES = tuple(f"{g}:{o}" for g in GROUNDS for o in ("allow", "deny"))

# dimension -> (its values, whether they sum to the total: a concern may name several areas)
DIMENSIONS: dict[str, tuple[tuple[str, ...], bool]] = {
    "age": (AGE_BANDS, True),
    "area": (AREAS, False),
    "level": (LEVELS, True),
    "ground_outcome": (GROUND_OUTCOMES, True),
}


@dataclass(frozen=True)
class Measure:
    id: str
    sv: str
    en: str
    dims: tuple[str, ...]


MEASURES = {
    m.id: m
    for m in (
        Measure(
            "concerns", "Oro anmäld (Upptäckaren)", "Concerns raised", ("age", "area", "level")
        ),
        Measure("attendance_flags", "Frånvarosignaler", "Attendance flags", ("age",)),
        Measure("support_decisions", "Beslut om stöd", "Support decisions", ("age",)),
        Measure("barnteam", "Barnteam sammankallat", "Barnteam convened", ("age",)),
        Measure("plans", "Planer upprättade eller ändrade", "Plans made or updated", ("age",)),
        Measure("mandatory_reports", "Orosanmälningar", "Mandatory reports", ("age",)),
        Measure(
            "flags_followed",
            "Frånvarosignaler följda av stödbeslut inom 30 dagar",
            "Attendance flags followed by a support decision within 30 days",
            ("age",),
        ),
        Measure("decisions", "Delningsbeslut", "Sharing decisions", ("ground_outcome",)),
        Measure("consents_given", "Samtycken lämnade", "Consents given", ()),
        Measure("consents_withdrawn", "Samtycken återkallade", "Consents withdrawn", ()),
        Measure("emergency_access", "Nödöppningar", "Emergency access (nödöppning)", ()),
    )
}
# "How early": days from a child's first concern to its first barnteam / plan / support
# decision. Stored as a frequency table per school year (no child behind a row of it), published
# only as quartiles and only from at least five children.
MILESTONES = {
    "barnteam": ("Första barnteam", "First barnteam"),
    "plan": ("Första plan", "First plan"),
    "support": ("Första stödbeslut", "First support decision"),
}
DAYS = "days"  # the dimension of those frequency tables


def early_measure(milestone: str) -> str:
    return f"days_to_{milestone}"


# Which event type counts under which measure.
EVENT_MEASURES = {
    "se.backabarnet.concern.raised.v1": "concerns",
    "se.backabarnet.attendance.flagged.v1": "attendance_flags",
    "se.backabarnet.support.decided.v1": "support_decisions",
    "se.backabarnet.barnteam.convened.v1": "barnteam",
    "se.backabarnet.plan.updated.v1": "plans",
    "se.backabarnet.mandatory.report.v1": "mandatory_reports",
}
# The audit actions that count, with the outcome they count at.
AUDIT_MEASURES = {
    ("consent.create", "ok"): "consents_given",
    ("consent.withdraw", "ok"): "consents_withdrawn",
    ("emergency_access", "ok"): "emergency_access",
}


def age_band(age: int) -> str:
    for band in AGE_BANDS[:-1]:
        low, high = (int(x) for x in band.split("-"))
        if low <= age <= high:
            return band
    return AGE_BANDS[-1]


def school_year(day: date) -> str:
    """The Swedish school year runs from 1 July: 2025/26 is July 2025 to June 2026."""
    start = day.year if day.month >= 7 else day.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def month(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def quarter(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def periods(moment: datetime) -> tuple[str, str, str]:
    """The month, quarter and school year a moment falls in."""
    day = moment.date()
    return month(day), quarter(day), school_year(day)


def months_of(year: str) -> list[str]:
    start = int(year[:4])
    return [f"{start}-{m:02d}" for m in range(7, 13)] + [
        f"{start + 1}-{m:02d}" for m in range(1, 7)
    ]


def quarters_of(year: str) -> list[str]:
    start = int(year[:4])
    return [f"{start}-Q3", f"{start}-Q4", f"{start + 1}-Q1", f"{start + 1}-Q2"]


def months_of_quarter(q: str) -> list[str]:
    y, n = int(q[:4]), int(q[-1])
    return [f"{y}-{m:02d}" for m in range(3 * n - 2, 3 * n + 1)]


def year_of_period(period: str) -> str:
    """The school year a month, quarter or school year belongs to."""
    if "/" in period:
        return period
    first_month = int(period[-1]) * 3 - 2 if "Q" in period else int(period[5:7])
    return school_year(date(int(period[:4]), first_month, 1))
