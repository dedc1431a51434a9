"""Turn a batch of accepted events into one policy input, and the answer into output records.

The policy input carries no personal data: organisation ids and kinds, roles, the child's age,
purposes, grounds, category and field names, and consent facts (never the child's number, never
a field value or free text).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.records import decision_record_id, record
from broker.contracts import Contracts
from broker.kafka import AUDIT, DELIVERIES
from broker.registry.models import Consent, Organisation
from broker.registry.service import active_roles, consent_facts
from broker.router.policy import PolicyAnswer
from broker.router.projector import project
from broker.subjects.personnummer import Personnummer

DELIVERY_NAMESPACE = uuid.UUID("2f1c7d3e-93a4-4b0c-8d55-1e6f0b9a7c21")
DENIED: dict[str, Any] = {"allow": False, "categories": [], "reasons": ["no_decision"]}


def delivery_id(source_org: str, event_id: str, recipient: str) -> str:
    """Deterministic, so a re-decided event yields the same id and downstream dedupes it."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{source_org}/{event_id}/{recipient}"))


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


@dataclass(frozen=True)
class Output:
    topic: str
    key: str | None
    value: dict[str, Any]


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
    report_munis = {e.report_municipality for e in events if _is_report(e)} - {None}
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
        if _is_report(ev):
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
                "report_municipality": ev.report_municipality if _is_report(ev) else None,
                "age": Personnummer(ev.envelope["subject"]).age_on(now.date()),
                "categories": sorted(set(fields.values())),
                "fields": fields,
                "consent": consent_facts(consent, pseudonym=ev.pseudonym),
                "candidates": ev.candidates,
            }
        )
    return {"now": now.isoformat().replace("+00:00", "Z"), "events": items}


def _is_report(ev: Pending) -> bool:
    return "mandatory_report" in (ev.envelope["purpose"], ev.envelope["legalbasis"])


def outputs(
    contracts: Contracts, events: list[Pending], answer: PolicyAnswer, now: datetime
) -> tuple[list[Output], set[str]]:
    """Deliveries, routing summaries and audit records; plus consents the allows relied on."""
    out: list[Output] = []
    relied_on: set[str] = set()
    for ref, ev in enumerate(events):
        per_org = answer.decisions.get(str(ref), {})
        event_type = contracts.events[ev.envelope["type"]]
        data = ev.envelope["data"]
        present = sorted({event_type.categories[f] for f in data if f in event_type.categories})
        recipients: list[dict[str, Any]] = []
        for cand in ev.candidates:
            org = cand["org"]
            found = per_org.get(org)
            decision: dict[str, Any] = found if isinstance(found, dict) else DENIED
            allow = decision.get("allow") is True
            sliced = project(data, event_type.categories, decision) if allow else {}
            if allow and not sliced:
                # Nothing but identity would go; a bare "something happened" is information too.
                allow, decision = False, {**decision, "reasons": ["nothing_necessary"]}
            shared = sorted(decision.get("categories") or []) if allow else []
            ground = decision.get("legal_ground")
            entry: dict[str, Any] = {
                "org": org,
                "shared": allow,
                "legal_ground": ground if allow else None,
                "categories": shared,
            }
            recipients.append(entry)
            if allow:
                did = delivery_id(ev.source_org, ev.event_id, org)
                entry["delivery_id"] = did
                if ground == "consent" and ev.consent_id:
                    relied_on.add(ev.consent_id)
                out.append(
                    Output(
                        DELIVERIES,
                        org,
                        {
                            "kind": "delivery",
                            "delivery_id": did,
                            "org": org,
                            "event_id": ev.event_id,
                            "type": ev.envelope["type"],
                            "subject": ev.envelope["subject"],
                            "subject_pseudonym": ev.pseudonym,
                            "time": ev.envelope.get("time") or now.isoformat(),
                            "source_org": ev.source_org,
                            "source_kind": ev.source_kind,
                            "purpose": ev.envelope["purpose"],
                            "legal_ground": ground,
                            "consent_id": ev.consent_id if ground == "consent" else None,
                            "categories": shared,
                            "data": sliced,
                            "obligations": decision.get("obligations") or [],
                        },
                    )
                )
            out.append(
                Output(
                    AUDIT,
                    None,
                    record(
                        record_id=decision_record_id(ev.source_org, ev.event_id, org),
                        action="decision",
                        outcome="allow" if allow else "deny",
                        actor_org=ev.source_org,
                        subject_pseudonym=ev.pseudonym,
                        event_id=ev.event_id,
                        recipient_org=org,
                        legal_ground=ground,
                        purpose=ev.envelope["purpose"],
                        categories_shared=shared,
                        categories_withheld=[c for c in present if c not in shared],
                        reasons=list(decision.get("reasons") or [])
                        or (["allowed"] if allow else []),
                        policy_revision=answer.revision,
                        decision_id=answer.decision_id,
                        time=now,
                    ),
                )
            )
        if not ev.candidates:
            out.append(
                Output(
                    AUDIT,
                    None,
                    record(
                        record_id=decision_record_id(ev.source_org, ev.event_id, None),
                        action="decision",
                        outcome="deny",
                        actor_org=ev.source_org,
                        subject_pseudonym=ev.pseudonym,
                        event_id=ev.event_id,
                        legal_ground=ev.envelope["legalbasis"],
                        purpose=ev.envelope["purpose"],
                        categories_withheld=present,
                        reasons=["no_candidate_recipients"],
                        policy_revision=answer.revision,
                        decision_id=answer.decision_id,
                        time=now,
                    ),
                )
            )
        out.append(
            Output(
                DELIVERIES,
                ev.source_org,
                {
                    "kind": "routed",
                    "source_org": ev.source_org,
                    "event_id": ev.event_id,
                    "recipients": recipients,
                },
            )
        )
    return out, relied_on
