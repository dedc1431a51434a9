"""The policy input: a batch of accepted events and their candidate recipients, as facts.

The policy input carries no personal data: organisation ids and kinds, roles, the child's age,
purposes, grounds, category and field names, and consent facts (never the child's number, never
a field value or free text). The router builds one per batch; nödöppning builds one for the
caller alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.contracts import Contracts
from broker.registry.models import Consent, Organisation
from broker.registry.service import active_roles, consent_facts
from broker.subjects.personnummer import Personnummer


@dataclass
class Pending:
    """One accepted event as the router sees it."""

    source_org: str
    source_kind: str
    report_municipality: str | None
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


async def build_input(
    session: AsyncSession,
    contracts: Contracts,
    events: list[Pending],
    now: datetime,
    *,
    only_recipient: str | None = None,
) -> dict[str, Any]:
    """The policy input for the batch (``only_recipient`` narrows it to one organisation)."""
    roles = await active_roles(session, pseudonyms=[e.pseudonym for e in events], at=now)
    report_munis = {e.report_municipality for e in events if is_report(e)} - {None}
    orgs: dict[str, Organisation] = {}
    wanted = {org for e in events for org in roles.get(e.pseudonym, {})}
    if wanted:
        rows = await session.execute(select(Organisation).where(Organisation.id.in_(wanted)))
        orgs.update({o.id: o for o in rows.scalars()})
    social_by_muni: dict[str, list[Organisation]] = {}
    if report_munis:
        rows = await session.execute(
            select(Organisation).where(
                Organisation.kind == "social_services", Organisation.municipality.in_(report_munis)
            )
        )
        for o in rows.scalars():
            orgs[o.id] = o
            social_by_muni.setdefault(o.municipality or "", []).append(o)
    consent_ids = {e.consent_id for e in events if e.consent_id}
    consents: dict[str, Consent] = {}
    if consent_ids:
        found = await session.execute(select(Consent).where(Consent.id.in_(consent_ids)))
        consents = {c.id: c for c in found.scalars()}

    items = []
    for ref, ev in enumerate(events):
        related = roles.get(ev.pseudonym, {})
        candidate_roles = {org: sorted(r) for org, r in related.items() if org != ev.source_org}
        if is_report(ev):
            for soc in social_by_muni.get(ev.report_municipality or "", []):
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
        consent = consents.get(ev.consent_id) if ev.consent_id else None
        items.append(
            {
                "ref": str(ref),
                "type": event_type.name,
                "source": {"org": ev.source_org, "kind": ev.source_kind},
                "purpose": ev.envelope["purpose"],
                "legal_basis": ev.envelope["legalbasis"],
                "report_municipality": ev.report_municipality if is_report(ev) else None,
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
