"""``python -m broker.demo year``: a year of fictional Backa barnet activity in Dalsland, for the
follow-up's charts (``/audit/cooperation/``, ``GET /v1/followup/...``).

Everything goes the way real activity does, through the public API as the municipalities' own
organisations: relationships, consents, events, a withdrawal, a nödöppning. Event times are
spread over the last whole school year; the larger municipalities get more children, so some cells
pass the threshold of five and others show "<5". Children are worked on in parallel (each
child's steps in order); ``make run`` starts it in the background once Samsyn is ready, so
start-up stays at seconds and the charts fill in the minute after.
"""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from broker.demo.dalsland import MUNICIPALITIES
from broker.demo.story import fictional_child
from broker.followup.catalogue import AREAS

STEERING_GROUP = "dalsland-styrgrupp"
# Children per municipality over the year: Åmål is the largest, Dals-Ed the smallest.
CHILDREN = {"1492": 64, "1461": 46, "1460": 42, "1439": 26, "1438": 18}
HEALTH_CENTRE = "vgr-vc-dalsland"
THREADS = 12


@dataclass
class Api:
    url: str
    clients: dict[str, dict[str, str]]
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60))
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, org: str) -> str:
        if org not in self.tokens:
            c = self.clients[org]
            r = self.http.post(
                f"{self.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(c["client_id"], c["client_secret"]),
            )
            r.raise_for_status()
            self.tokens[org] = r.json()["access_token"]
        return self.tokens[org]

    def post(self, org: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.http.post(
            self.url + path, json=body, headers={"Authorization": f"Bearer {self.token(org)}"}
        )


def _z(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _event(
    org: str, subject: str, name: str, data: dict[str, Any], at: datetime, **envelope: Any
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"org/{org}",
        "type": f"se.backabarnet.{name}.v1",
        "time": _z(at),
        "subject": subject,
        "datacontenttype": "application/json",
        "data": data,
        **envelope,
    }


def _child_year(api: Api, slug: str, rng: random.Random, year: tuple[datetime, datetime]) -> int:
    """One municipal child's year: enrolled, a consent, a concern or two, and for some an
    attendance flag, support, a barnteam, a plan or a mandatory report. Returns the calls."""
    age = rng.choice([2, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18])
    subject = fictional_child(age)
    school = f"{slug}-forskola" if age < 6 else f"{slug}-skola"
    social = f"{slug}-socialtjanst"
    first, now = year
    start = first + timedelta(days=rng.randint(0, 330), hours=rng.randint(7, 16))
    calls = [
        (
            school,
            "/v1/relationships",
            {"subject": subject, "role": "enrolled", "valid_from": _z(start - timedelta(days=400))},
        ),
    ]
    consent_body = {
        "subject": subject,
        "given_by": [{"role": "guardian"}],
        "scope": {
            "from_kinds": ["preschool", "school"],
            "to_kinds": ["student_health", "social_services"],
            "categories": ["concern", "attendance", "education_support"],
            "purposes": ["early_support"],
        },
        "valid_from": _z(start - timedelta(days=1)),
        "valid_until": _z(now + timedelta(days=365)),
    }
    r = api.post(school, "/v1/consents", consent_body)
    r.raise_for_status()
    consent = r.json()["id"]
    by_consent = {"purpose": "early_support", "legalbasis": "consent", "consentref": consent}
    care = {"purpose": "child_plan", "legalbasis": "care_support_u18"}
    events: list[tuple[str, dict[str, Any]]] = []

    def add(org: str, name: str, data: dict[str, Any], at: datetime, **envelope: Any) -> None:
        events.append((org, _event(org, subject, name, data, at, **envelope)))

    def later(days_low: int, days_high: int, after: datetime) -> datetime:
        return min(now, after + timedelta(days=rng.randint(days_low, days_high)))

    areas = rng.sample(AREAS, rng.choice([1, 1, 2]))
    level = rng.choices([1, 2, 3, 4], weights=[3, 4, 2, 1])[0]
    concern = {"areas": areas, "level": level, "raised_by_role": "teacher"}
    add(school, "concern.raised", concern, start, **by_consent)
    if rng.random() < 0.35:
        again = later(20, 120, start)
        data = {"areas": rng.sample(AREAS, 1), "level": min(4, level + 1)}
        add(school, "concern.raised", data, again, **by_consent)
    if age >= 6 and rng.random() < 0.45:
        flagged = later(-10, 40, start)
        attendance = {
            "period_start": (flagged - timedelta(days=30)).date().isoformat(),
            "period_end": flagged.date().isoformat(),
            "absence_percent": rng.choice([12.5, 18.0, 24.0, 35.5]),
        }
        add(school, "attendance.flagged", attendance, flagged, **by_consent)
        if rng.random() < 0.6:
            decided = later(3, 45, flagged)
            measure = rng.choice(["extra_adaptations", "special_support", "action_programme"])
            add(school, "support.decided", {"measure": measure}, decided, **by_consent)
    # care_support_u18 and the reporting duty concern children: an 18-year-old's barnteam and
    # reports would be refused at ingest as never routable (policies/data/grounds).
    if level >= 2 and age < 18 and rng.random() < 0.55:
        case = {"subject": subject, "role": "case_open", "valid_from": _z(start)}
        calls.append((social, "/v1/relationships", case))
        met = later(7, 60, start)
        team = {"meeting_at": _z(met), "participants": [school, social]}
        add(social, "barnteam.convened", team, met, **care)
        if rng.random() < 0.7:
            planned = later(5, 40, met)
            plan = {"coordinator_org": social}
            add(social, "plan.updated", plan, planned, **care)
    if level == 4 and age < 18 and rng.random() < 0.6:
        report = {"areas": ["trygghet"], "urgency": "normal", "description": "Fiktiv / fictional"}
        events.append(
            (
                school,
                _event(
                    school,
                    subject,
                    "mandatory.report",
                    report,
                    later(0, 3, start),
                    purpose="mandatory_report",
                    legalbasis="mandatory_report",
                ),
            )
        )
    for org, path, body in calls:
        api.post(org, path, body).raise_for_status()
    for org, env in sorted(events, key=lambda e: e[1]["time"]):
        api.post(org, "/v1/events", env).raise_for_status()
    if rng.random() < 0.08:
        api.post(school, f"/v1/consents/{consent}/withdraw", {}).raise_for_status()
    return len(calls) + len(events) + 1


def _health_child(api: Api, rng: random.Random, year: tuple[datetime, datetime]) -> int:
    """A child the region's health centre (no municipality) raises a concern about."""
    subject = fictional_child(rng.choice([1, 3, 5, 9, 14]))
    at = year[0] + timedelta(days=rng.randint(0, 360), hours=10)
    data = {"areas": ["halsa"], "level": rng.choice([1, 2])}
    env = _event(
        HEALTH_CENTRE,
        subject,
        "concern.raised",
        data,
        at,
        purpose="early_support",
        legalbasis="care_support_u18",
    )
    api.post(HEALTH_CENTRE, "/v1/events", env).raise_for_status()
    return 1


def last_whole_school_year(today: datetime) -> tuple[datetime, datetime]:
    """July to June before the current school year: every month of its charts has activity."""
    begins = today.year - 1 if today.month >= 7 else today.year - 2
    return datetime(begins, 7, 1, tzinfo=UTC), datetime(begins + 1, 6, 30, 18, tzinfo=UTC)


def seed_year(url: str, clients: dict[str, dict[str, str]], *, seed: int = 2026) -> int:
    """Publish the year; returns the number of API calls made."""
    api = Api(url, clients)
    year = last_whole_school_year(datetime.now(UTC))
    work: list[tuple[str | None, random.Random]] = []
    root = random.Random(seed)  # noqa: S311 - fictional activity, repeatable, not a secret
    for code, (slug, _) in MUNICIPALITIES.items():
        work += [(slug, random.Random(root.random())) for _ in range(CHILDREN[code])]  # noqa: S311
    work += [(None, random.Random(root.random())) for _ in range(12)]  # noqa: S311
    for org in {o for o, _ in work}:  # tokens first, once each: the token endpoint is limited
        if org:
            api.token(f"{org}-skola")
            api.token(f"{org}-forskola")
            api.token(f"{org}-socialtjanst")
    api.token(HEALTH_CENTRE)

    def one(item: tuple[str | None, random.Random]) -> int:
        slug, rng = item
        return _child_year(api, slug, rng, year) if slug else _health_child(api, rng, year)

    with ThreadPoolExecutor(THREADS) as pool:
        calls = sum(pool.map(one, work))
    # A few nödöppningar by the health centre; one the ground does not allow is refused (404)
    # and counts as none, as it should.
    for _ in range(3):
        subject = fictional_child(root.choice([4, 9, 13]))
        reason = {"reason": "Fiktiv akut situation / fictional emergency"}
        api.post(HEALTH_CENTRE, f"/v1/children/{subject}/emergency-access", reason)
        calls += 1
    return calls


def seed_year_once(url: str, clients: dict[str, dict[str, str]]) -> None:
    """Seed the year unless the follow-up has counted activity already."""
    api = Api(url, clients)
    r = api.http.get(
        f"{url}/v1/followup", headers={"Authorization": f"Bearer {api.token(STEERING_GROUP)}"}
    )
    r.raise_for_status()
    if r.json()["school_years"]:
        print("Uppföljningen har redan aktivitet / the follow-up has activity already")
        return
    started = datetime.now(UTC)
    calls = seed_year(url, clients)
    seconds = (datetime.now(UTC) - started).total_seconds()
    print(
        f"Ett års fiktiv aktivitet i Dalsland: {calls} anrop på {seconds:.0f} s / "
        f"a year of fictional activity in Dalsland: {calls} calls in {seconds:.0f} s "
        "(uppföljning / follow-up: /audit/cooperation/)"
    )
