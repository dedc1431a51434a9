"""The benchmark's world: a few municipalities, fictional children, and the events they cause.

Per municipality a school (the publisher), student health and social services; in the region
four health centres and one police authority. Every child (serial 98x, see
``broker.demo.story.fictional_child``) is enrolled at its school; student health (enrolled and
barnteam member), its own health centre (listed), social services (case open) and the police
(case open) are related to it: four candidate recipients for every event. The guardians consent
to the school sharing attendance and concerns with student health, health and social services
for early support, each child's guardians on a day of their own and for a period of their own;
the police are outside the consent.

Why several health centres and consents of their own: OPA remembers a function's answer for the
rest of a query, so a batch whose children all have the same organisations around them and
consents alike to the second is decided more cheaply than a municipality's
(docs/bench/journal.md, session 25).

So each event gets four decisions: three allows, each with its own slice (student health sees
absence percentages as they are and a concern's description, being in the barnteam; the health
centre gets banded percentages and no description; social services, case open, get the
description, banded percentages) and one deny (the police).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from broker.demo.story import fictional_child, iso
from tests.kit import Org, Samsyn

MUNICIPALITIES = ("1438", "1460")
HEALTH_CENTRES = 4
AREAS = ["trygghet", "halsa", "utveckling", "omsorg", "fritid", "respekt", "ansvar"]
ROLES = ["teacher", "mentor", "school nurse", "principal"]
CONSENT_SCOPE = {
    "from_kinds": ["school"],
    "to_kinds": ["student_health", "health", "social_services"],
    "categories": ["attendance", "concern", "concern_detail"],
    "purposes": ["early_support"],
}


@dataclass
class Child:
    number: str
    municipality: str
    consent: str = ""


@dataclass
class World:
    schools: dict[str, Org]
    recipients: list[Org]  # every organisation that may receive (the feed pollers read these)
    police: Org
    children: list[Child] = field(default_factory=list)

    def envelope(self, c: Child, kind: str | None = None) -> tuple[Org, dict[str, Any]]:
        """A fresh event about ``c`` from its school (attendance or concern, half each)."""
        school = self.schools[c.municipality]
        kind = kind or random.choice(("attendance", "concern"))
        if kind == "attendance":
            absence = round(random.uniform(5, 60), 1)
            name = "attendance.flagged"
            data: dict[str, Any] = {
                "period_start": "2026-09-01",
                "period_end": "2026-09-30",
                "absence_percent": absence,
                "unexcused_percent": round(absence * random.uniform(0.1, 0.6), 1),
            }
        else:
            name = "concern.raised"
            data = {
                "areas": random.sample(AREAS, k=random.randint(1, 3)),
                "level": random.randint(1, 4),
                "raised_by_role": random.choice(ROLES),
                "description": "Fiktiv iakttagelse: kommer ofta trött till skolan.",
            }
        env = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"org/{school.id}",
            "type": f"se.backabarnet.{name}.v1",
            "time": iso(),
            "subject": c.number,
            "datacontenttype": "application/json",
            "purpose": "early_support",
            "legalbasis": "consent",
            "consentref": c.consent,
            "data": data,
        }
        return school, env


def build(samsyn: Samsyn, children: int, concurrency: int = 16) -> World:
    """Organisations (through the admin API), then the children's relationships and consents
    (through the public API, as the agencies would declare them)."""
    schools: dict[str, Org] = {}
    recipients: list[Org] = []
    eh: dict[str, Org] = {}
    soc: dict[str, Org] = {}
    for m in MUNICIPALITIES:
        schools[m] = samsyn.org("school", m)
        eh[m] = samsyn.org("student_health", m)
        soc[m] = samsyn.org("social_services", m)
        recipients += [eh[m], soc[m]]
    health_centres = [samsyn.org("health") for _ in range(HEALTH_CENTRES)]
    police = samsyn.org("police")
    recipients += health_centres
    world = World(schools, recipients, police)
    numbers: set[str] = set()
    while len(numbers) < children:  # distinct children (serial 98x leaves few numbers per day)
        numbers.add(fictional_child(random.randint(7, 13)))
    world.children = [
        Child(number, MUNICIPALITIES[i % len(MUNICIPALITIES)])
        for i, number in enumerate(sorted(numbers))
    ]

    async def one(client: httpx.AsyncClient, i: int, c: Child) -> None:
        m = c.municipality
        # Every other child is in the other municipality: i // 2 spreads each one's children
        # over all the health centres.
        vc = health_centres[i // len(MUNICIPALITIES) % HEALTH_CENTRES]

        async def post(org: Org, path: str, body: dict[str, Any]) -> str:
            r = await client.post(
                samsyn.url + path, json=body, headers={"Authorization": f"Bearer {org.token}"}
            )
            if r.status_code != 201:
                raise RuntimeError(f"{path} as {org.id}: {r.status_code} {r.text}")
            return str(r.json()["id"])

        rel = {"subject": c.number, "valid_from": iso(-30)}
        await post(schools[m], "/v1/relationships", {**rel, "role": "enrolled"})
        await post(eh[m], "/v1/relationships", {**rel, "role": "enrolled"})
        await post(eh[m], "/v1/relationships", {**rel, "role": "barnteam_member"})
        await post(vc, "/v1/relationships", {**rel, "role": "listed"})
        await post(soc[m], "/v1/relationships", {**rel, "role": "case_open"})
        await post(police, "/v1/relationships", {**rel, "role": "case_open"})
        c.consent = await post(
            schools[m],
            "/v1/consents",
            {
                "subject": c.number,
                "given_by": [{"role": "guardian"}],
                "scope": CONSENT_SCOPE,
                "valid_from": iso(-random.uniform(1, 300)),
                "valid_until": iso(random.uniform(30, 365)),
            },
        )

    async def all_children() -> None:
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=60) as client:

            async def limited(i: int, c: Child) -> None:
                async with sem:
                    await one(client, i, c)

            await asyncio.gather(*(limited(i, c) for i, c in enumerate(world.children)))

    asyncio.run(all_children())
    return world


# What the policy must answer for every event of this world (checked on the warm-up events).
EXPECTED_SHARED = {"student_health": True, "health": True, "social_services": True, "police": False}
