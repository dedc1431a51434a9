"""``make demo``: one fictional child's year with Backa barnet in Åmål, through the public API.

After each step it prints, per organisation, what it received, and from the audit trail what was
withheld from whom and why — a table a non-developer can read. ``play`` returns the same facts
for the test that pins the story's outcomes.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from broker.records import AuditAction
from broker.subjects.personnummer import luhn_digit
from consumers.notices import CONSENT_WITHDRAWN

SCHOOL, STUDENT_HEALTH, SOCIAL = "amal-skola", "amal-elevhalsa", "amal-socialtjanst"
HEALTH_CENTRE, BUP, POLICE = "vgr-vc-dalsland", "vgr-bup-dalsland", "polisen-fyrbodal"
AUDITOR = "dalsland-granskning"
PARTIES = (SCHOOL, STUDENT_HEALTH, SOCIAL, HEALTH_CENTRE, BUP, POLICE)
# How long a step may take to show in the feeds and the audit trail before the demo gives up.
SETTLE_WITHIN_S = 60


def fictional_child(age: int) -> str:
    """A Luhn-valid number with serial 98x: a range no real person has (fictional)."""
    today = date.today()
    born = today.replace(year=today.year - age) - timedelta(days=random.randint(40, 300))  # noqa: S311
    nine = born.strftime("%y%m%d") + f"98{random.randint(0, 9)}"  # noqa: S311
    return born.strftime("%Y%m%d") + nine[6:] + str(luhn_digit(nine))


def iso(days: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(days=days)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class StepResult:
    title: str
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    withheld: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Story:
    url: str
    clients: dict[str, dict[str, str]]
    quiet: bool = False
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))
    tokens: dict[str, str] = field(default_factory=dict)
    cursors: dict[str, str | None] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)
    # What the current step waits for: the event ids each organisation was given, how many
    # decisions each event had, and who is owed a withdrawal notice.
    due_items: dict[str, set[str]] = field(default_factory=dict)
    due_decisions: dict[str, int] = field(default_factory=dict)
    due_notices: set[str] = field(default_factory=set)
    # Who received something under each consent, so a withdrawal knows whom to expect notices for.
    under_consent: dict[str, set[str]] = field(default_factory=dict)

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

    def call(self, org: str, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(
            method, self.url + path, headers={"Authorization": f"Bearer {self.token(org)}"}, **kw
        )
        if r.status_code >= 400:
            raise RuntimeError(f"{org} {method} {path}: {r.status_code} {r.text}")
        return r.json()

    def relate(self, actor: str, subject: str, role: str, for_org: str | None = None) -> None:
        """``actor`` declares ``role``; a barnkontakt may declare it ``for_org`` another one."""
        body = {"subject": subject, "role": role, "valid_from": iso(-1)}
        if for_org:
            body["org"] = for_org
        self.call(actor, "POST", "/v1/relationships", json=body)

    def publish(
        self,
        org: str,
        subject: str,
        name: str,
        data: dict[str, Any],
        purpose: str,
        basis: str,
        consent: str | None = None,
    ) -> str:
        env: dict[str, Any] = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"org/{org}",
            "type": f"se.backabarnet.{name}.v1",
            "time": iso(),
            "subject": subject,
            "datacontenttype": "application/json",
            "purpose": purpose,
            "legalbasis": basis,
            "data": data,
        }
        if consent:
            env["consentref"] = consent
        self.call(org, "POST", "/v1/events", json=env)
        event_id = str(env["id"])
        status = self.call(org, "GET", f"/v1/events/{event_id}")
        deadline = time.monotonic() + SETTLE_WITHIN_S
        while status["status"] != "routed":
            if time.monotonic() > deadline:
                raise RuntimeError(f"event {event_id} was not routed")
            time.sleep(0.1)
            status = self.call(org, "GET", f"/v1/events/{event_id}")
        self.due_decisions[event_id] = len(status["recipients"])
        for recipient in status["recipients"]:
            # Only the story's parties are read: another organisation of the municipality (a
            # test's, on a shared broker) may get a mandatory report too.
            if recipient["shared"] and recipient["org"] in PARTIES:
                self.due_items.setdefault(recipient["org"], set()).add(event_id)
                if consent:
                    self.under_consent.setdefault(consent, set()).add(recipient["org"])
        return event_id

    def withdraw(self, org: str, consent: str) -> None:
        self.call(org, "POST", f"/v1/consents/{consent}/withdraw", json={})
        self.due_notices |= self.under_consent.get(consent, set())

    def settle(self, title: str, subject: str) -> StepResult:
        """Read every party's new feed items and the step's denials from the audit trail, until
        what the broker said it decided is there: each event's deliveries in the recipients'
        feeds, each withdrawal notice, and a sealed audit record for each decision."""
        step = StepResult(title)
        deadline = time.monotonic() + SETTLE_WITHIN_S
        while True:
            self._read_feeds(step)
            decisions = [r for r in self._decisions(subject) if r["event_id"] in self.due_decisions]
            missing = self._missing(step, len(decisions))
            if not missing:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"step {title!r} did not settle: {missing}")
            time.sleep(0.2)
        step.withheld = [r for r in decisions if r["outcome"] == "deny"]
        self.due_items, self.due_decisions, self.due_notices = {}, {}, set()
        self.results.append(step)
        if not self.quiet:
            print_step(len(self.results), step)
        return step

    def _read_feeds(self, step: StepResult) -> None:
        for org in PARTIES:
            params: dict[str, Any] = {"limit": 500}
            if self.cursors.get(org):
                params["after"] = self.cursors[org]
            page = self.call(org, "GET", "/v1/feed", params=params)
            if page["items"]:
                step.received.setdefault(org, []).extend(page["items"])
            self.cursors[org] = page["next"]

    def _decisions(self, subject: str) -> list[dict[str, Any]]:
        page = self.call(
            AUDITOR,
            "GET",
            "/v1/audit/records",
            params={"subject": subject, "action": AuditAction.DECISION, "limit": 1000},
        )
        return list(page["items"])

    def _missing(self, step: StepResult, decisions: int) -> list[str]:
        """What the step still waits for, in words for the error if it never comes."""
        missing = []
        for org, event_ids in sorted(self.due_items.items()):
            seen = {i.get("event_id") for i in step.received.get(org, [])}
            missing += [f"{org} has not received {e}" for e in sorted(event_ids - seen)]
        for org in sorted(self.due_notices):
            if not any(i["type"] == CONSENT_WITHDRAWN for i in step.received.get(org, [])):
                missing.append(f"{org} has no withdrawal notice")
        due = sum(self.due_decisions.values())
        if decisions < due:
            missing.append(f"{decisions} of {due} decisions are in the audit trail")
        return missing


def describe(item: dict[str, Any]) -> str:
    kind = item["type"].removeprefix("se.backabarnet.").removesuffix(".v1")
    if kind in ("consent.withdrawn", "access.notice", "emergency.notice"):
        return f"{kind} {item['data']}"
    fields = ", ".join(f"{k}={v}" for k, v in item["data"].items())
    return f"{kind} [{item['legal_ground']}] {fields}"


def print_step(n: int, step: StepResult) -> None:
    print(f"\n=== Steg {n} / Step {n}: {step.title}")
    if not step.received and not step.withheld:
        print("    (inget delat / nothing shared)")
    for org, items in step.received.items():
        for item in items:
            print(f"    {org:20} fick / received   {describe(item)[:150]}")
    for rec in step.withheld:
        withheld = ", ".join(rec["categories_withheld"]) or "-"
        print(
            f"    {rec['recipient_org'] or '(ingen / none)':20} undanhållet / withheld "
            f"{withheld}  ({', '.join(rec['reasons'])})"
        )


def play(url: str, clients: dict[str, dict[str, str]], *, quiet: bool = False) -> Story:
    story = Story(url, clients, quiet=quiet)
    barn = fictional_child(13)
    if not quiet:
        print(f"Ett fiktivt barn / a fictional child: {barn} (13 år / years, serie 98x)")

    story.relate(SCHOOL, barn, "enrolled")
    story.relate(SCHOOL, barn, "barnkontakt")
    story.relate(STUDENT_HEALTH, barn, "enrolled")
    story.relate(HEALTH_CENTRE, barn, "listed")
    story.relate(BUP, barn, "listed")
    for org in (STUDENT_HEALTH, HEALTH_CENTRE, BUP):
        story.relate(SCHOOL, barn, "barnteam_member", for_org=org)
    consent = story.call(
        SCHOOL,
        "POST",
        "/v1/consents",
        json={
            "subject": barn,
            "given_by": [{"role": "guardian"}],
            "scope": {
                "from_kinds": ["school", "health", "social_services"],
                "to_kinds": ["student_health", "health", "school"],
                "categories": [
                    "concern",
                    "concern_detail",
                    "attendance",
                    "health",
                    "plan",
                    "wellbeing",
                ],
                "purposes": ["early_support", "child_plan"],
            },
            "valid_from": iso(-1),
            "valid_until": iso(365),
        },
    )["id"]
    story.settle(
        "Rektor (barnkontakt) registrerar vårdnadshavarnas samtycke och sammankallar "
        "barnteamet / the head records the guardians' consent and convenes the barnteam",
        barn,
    )

    story.publish(
        SCHOOL,
        barn,
        "concern.raised",
        {
            "areas": ["trygghet", "tillhorighet"],
            "level": 2,
            "raised_by_role": "teacher",
            "description": "Ensam på raster, ofta ledsen (fiktivt exempel).",
        },
        "early_support",
        "consent",
        consent,
    )
    story.settle("Läraren (upptäckaren) lyfter en oro / the teacher raises a concern", barn)

    story.publish(
        BUP,
        barn,
        "health.contact",
        {
            "service": "bup",
            "reason_area": "halsa",
            "referral": True,
            "diagnosis_codes": ["F93.8"],
            "note": "Bedömning påbörjad (fiktivt).",
        },
        "early_support",
        "consent",
        consent,
    )
    story.settle(
        "BUP delar en vårdkontakt inom samtycket / BUP shares a care contact within the consent",
        barn,
    )

    story.publish(
        SCHOOL,
        barn,
        "attendance.flagged",
        {
            "period_start": "2026-10-01",
            "period_end": "2026-10-31",
            "absence_percent": 23.5,
            "unexcused_percent": 12.0,
        },
        "early_support",
        "consent",
        consent,
    )
    story.settle(
        "Skolan flaggar frånvaro; vårdcentralen ser ett intervall / attendance is "
        "flagged and the health centre sees a band",
        barn,
    )

    story.relate(SOCIAL, barn, "case_open")
    story.publish(
        SOCIAL,
        barn,
        "social.case",
        {"stage": "investigation", "note": "Utredning inledd (fiktivt)."},
        "child_plan",
        "consent",
        consent,
    )
    story.settle("Socialtjänsten öppnar ett ärende / social services opens a case", barn)

    story.relate(POLICE, barn, "case_open")
    story.publish(
        POLICE,
        barn,
        "police.observation",
        {"kind": "risk_environment", "place": "Centrum", "note": "Sedd i riskmiljö (fiktivt)."},
        "crime_prevention",
        "crime_prevention_u21",
    )
    story.settle(
        "Polisen delar en iakttagelse enligt OSL 10 kap 18 a § / the police share an "
        "observation under OSL 10:18 a",
        barn,
    )

    story.publish(
        SCHOOL,
        barn,
        "mandatory.report",
        {
            "areas": ["trygghet"],
            "urgency": "urgent",
            "description": "Barnet berättar om oro hemma (fiktivt).",
        },
        "mandatory_report",
        "mandatory_report",
    )
    story.settle(
        "Orosanmälan går bara till socialtjänsten / a mandatory report goes to social "
        "services only",
        barn,
    )

    story.withdraw(SCHOOL, consent)
    story.settle(
        "Vårdnadshavarna återkallar samtycket; mottagarna underrättas / the guardians "
        "withdraw consent and the recipients are told",
        barn,
    )
    return story
