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

SCHOOL, STUDENT_HEALTH, SOCIAL = "amal-skola", "amal-elevhalsa", "amal-socialtjanst"
HEALTH_CENTRE, BUP, POLICE = "vgr-vc-dalsland", "vgr-bup-dalsland", "polisen-fyrbodal"
AUDITOR = "dalsland-granskning"
PARTIES = (SCHOOL, STUDENT_HEALTH, SOCIAL, HEALTH_CENTRE, BUP, POLICE)


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
    audit_after: int = 0
    results: list[StepResult] = field(default_factory=list)

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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.call(org, "GET", f"/v1/events/{env['id']}")["status"] == "routed":
                return str(env["id"])
            time.sleep(0.1)
        raise RuntimeError(f"event {env['id']} was not routed")

    def settle(self, title: str, subject_pseudonym_hint: str) -> StepResult:
        """Read every party's new feed items and the audit trail's new denials."""
        step = StepResult(title)
        time.sleep(1.5)  # let the sealer seal this step's decisions
        for org in PARTIES:
            params: dict[str, Any] = {"limit": 500}
            if self.cursors.get(org):
                params["after"] = self.cursors[org]
            page = self.call(org, "GET", "/v1/feed", params=params)
            if page["items"]:
                step.received[org] = page["items"]
            self.cursors[org] = page["next"]
        page = self.call(
            AUDITOR,
            "GET",
            "/v1/audit/records",
            params={
                "subject": subject_pseudonym_hint,
                "action": AuditAction.DECISION,
                "outcome": "deny",
                "cursor": None,
                "limit": 1000,
            },
        )
        step.withheld = [r for r in page["items"] if r["seq"] > self.audit_after]
        everything = self.call(
            AUDITOR,
            "GET",
            "/v1/audit/records",
            params={"subject": subject_pseudonym_hint, "limit": 1000},
        )
        if everything["items"]:
            self.audit_after = max(r["seq"] for r in everything["items"])
        self.results.append(step)
        if not self.quiet:
            print_step(len(self.results), step)
        return step


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

    story.call(SCHOOL, "POST", f"/v1/consents/{consent}/withdraw", json={})
    time.sleep(1.0)
    story.settle(
        "Vårdnadshavarna återkallar samtycket; mottagarna underrättas / the guardians "
        "withdraw consent and the recipients are told",
        barn,
    )
    return story
