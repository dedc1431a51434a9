"""The policy input: a batch of accepted events and their candidate recipients, as facts.

The policy input carries no personal data: organisation ids and kinds, roles, the child's age,
purposes, grounds, category and field names, and consent facts (never the child's number, never
a field value or free text). The router builds one per batch; nödöppning builds one for the
caller alone; the ingest asks about the admission of the events of one publish
(``admission_inputs``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.contracts import Contracts, EventType
from broker.registry.models import Consent, Organisation
from broker.registry.service import active_roles, consent_facts
from broker.runtime.state import OrgFacts
from broker.subjects.personnummer import Personnummer


@dataclass
class Pending:
    """One accepted event as the router sees it."""

    source_org: str
    source_kind: str
    pseudonym: str
    envelope: dict[str, Any]
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return str(self.envelope["id"])

    @property
    def consent_id(self) -> str | None:
        ref = self.envelope.get("consentref")
        return str(ref) if ref else None


@dataclass
class RegistryFacts:
    """What a batch's policy input needs of the registry: the children's active roles by
    organisation, the organisations involved (and the social services of the municipalities a
    report may go to), and the consents the events name. The router takes them from its
    in-memory view (``broker.router.registry_view``), the others from the database."""

    roles: dict[str, dict[str, set[str]]]
    orgs: dict[str, OrgFacts]
    social_by_muni: dict[str, list[OrgFacts]]
    consents: dict[str, Consent]


def org_facts(org: Organisation) -> OrgFacts:
    return OrgFacts(id=org.id, kind=org.kind, municipality=org.municipality)


async def facts_from_db(
    session: AsyncSession, events: list[Pending], now: datetime
) -> RegistryFacts:
    """The batch's registry facts, read from the database."""
    roles = await active_roles(session, pseudonyms=[e.pseudonym for e in events], at=now)
    wanted = {org for e in events for org in roles.get(e.pseudonym, {})}
    wanted |= {e.source_org for e in events}
    rows = await session.execute(select(Organisation).where(Organisation.id.in_(wanted)))
    orgs = {o.id: org_facts(o) for o in rows.scalars()}
    report_munis = {m for e in events if is_report(e) for m in report_municipalities(e, orgs)}
    social_by_muni = await social_services(session, report_munis)
    for found in social_by_muni.values():
        orgs.update((o.id, o) for o in found)
    consent_ids = {e.consent_id for e in events if e.consent_id}
    consents: dict[str, Consent] = {}
    if consent_ids:
        got = await session.execute(select(Consent).where(Consent.id.in_(consent_ids)))
        consents = {c.id: c for c in got.scalars()}
    return RegistryFacts(roles, orgs, social_by_muni, consents)


async def social_services(session: AsyncSession, munis: set[str]) -> dict[str, list[OrgFacts]]:
    """The social services of each municipality (a report's candidates)."""
    out: dict[str, list[OrgFacts]] = {}
    if munis:
        rows = await session.execute(
            select(Organisation).where(
                Organisation.kind == "social_services", Organisation.municipality.in_(munis)
            )
        )
        for o in rows.scalars():
            out.setdefault(o.municipality or "", []).append(org_facts(o))
    return out


async def build_input(
    session: AsyncSession,
    contracts: Contracts,
    events: list[Pending],
    now: datetime,
    *,
    only_recipient: str | None = None,
) -> dict[str, Any]:
    """The policy input for the batch, its facts read from the database (``only_recipient``
    narrows it to one organisation)."""
    facts = await facts_from_db(session, events, now)
    return policy_input(contracts, events, now, facts, only_recipient=only_recipient)


def policy_input(
    contracts: Contracts,
    events: list[Pending],
    now: datetime,
    facts: RegistryFacts,
    *,
    only_recipient: str | None = None,
) -> dict[str, Any]:
    """The policy input for the batch from its registry facts; sets each event's candidates."""
    orgs = facts.orgs
    items = []
    for ref, ev in enumerate(events):
        related = facts.roles.get(ev.pseudonym, {})
        candidate_roles = {org: sorted(r) for org, r in related.items() if org != ev.source_org}
        if is_report(ev):
            # A report's candidates: the social services of every municipality it could go to
            # (its source's and the one its municipality extension names); which one is the
            # policy's call.
            for muni in report_municipalities(ev, orgs):
                for soc in facts.social_by_muni.get(muni, []):
                    if soc.id != ev.source_org:
                        candidate_roles.setdefault(soc.id, [])
        ev.candidates = [
            {"org": org, "kind": orgs[org].kind, "municipality": orgs[org].municipality, "roles": r}
            for org, r in sorted(candidate_roles.items())
            if org in orgs and only_recipient in (None, org)
        ]
        event_type = contracts.events[ev.envelope["type"]]
        data = ev.envelope["data"]
        fields = {f: event_type.categories[f] for f in data if f in event_type.categories}
        consent = facts.consents.get(ev.consent_id) if ev.consent_id else None
        items.append(
            {
                "ref": str(ref),
                "type": event_type.name,
                "source": {
                    "org": ev.source_org,
                    "kind": ev.source_kind,
                    "municipality": _municipality(orgs.get(ev.source_org)),
                },
                "purpose": ev.envelope["purpose"],
                "legal_basis": ev.envelope["legalbasis"],
                "municipality_extension": ev.envelope.get("municipality"),
                "age": Personnummer(ev.envelope["subject"]).age_on(now.date()),
                "categories": sorted(set(fields.values())),
                "fields": fields,
                "consent": consent_facts(consent, pseudonym=ev.pseudonym),
                "candidates": ev.candidates,
            }
        )
    return {"now": now.isoformat().replace("+00:00", "Z"), "events": items}


def is_report(ev: Pending) -> bool:
    return "mandatory_report" in (ev.envelope["purpose"], ev.envelope["legalbasis"])


def _municipality(org: OrgFacts | None) -> str | None:
    return org.municipality if org is not None else None


def report_municipalities(ev: Pending, orgs: dict[str, OrgFacts]) -> set[str]:
    return _report_municipalities(orgs.get(ev.source_org), ev.envelope)


def _report_municipalities(source: OrgFacts | None, envelope: dict[str, Any]) -> set[str]:
    """Where a report could go: its source's municipality and the one its municipality
    extension names."""
    named = {_municipality(source), envelope.get("municipality")}
    return {m for m in named if m is not None}


@dataclass(frozen=True)
class Admissible:
    """An event checked at ingest, as its admission is decided on."""

    event_type: EventType
    envelope: dict[str, Any]
    subject: Personnummer


async def admission_inputs(
    events: list[Admissible],
    source: OrgFacts,
    today: date,
    with_social_services: Callable[[set[str]], Awaitable[set[str]]],
) -> list[dict[str, Any]]:
    """The facts ``samsyn.admission`` decides each event's admission on, at ingest: the same
    facts the router gives the policy about the event, and which of the municipalities it could
    be reported to have social services (asked once for the whole publish)."""
    named = [_report_municipalities(source, e.envelope) for e in events]
    with_social = await with_social_services(set().union(*named))
    return [
        {
            "type": e.event_type.name,
            "source": {"org": source.id, "kind": source.kind, "municipality": source.municipality},
            "purpose": e.envelope["purpose"],
            "legal_basis": e.envelope["legalbasis"],
            "municipality_extension": e.envelope.get("municipality"),
            "age": e.subject.age_on(today),
            "social_services_municipalities": sorted(n & with_social),
        }
        for e, n in zip(events, named, strict=True)
    ]
