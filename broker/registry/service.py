"""Registry operations as plain functions; they raise domain errors, the routes map them."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.infra.db import utcnow
from broker.registry.models import ApiClient, Consent, Organisation, Relationship
from broker.registry.schemas import ClientIn, ConsentIn, OrganisationIn, RelationshipIn
from broker.registry.secrets import hash_secret, new_secret
from broker.web.errors import Conflict, InvalidInput, NotFound

# Roles an organisation may declare for itself, by its kind; the barnkontakt may in addition
# declare barnteam_member for the organisations it convenes.
ROLES_BY_KIND: dict[str, frozenset[str]] = {
    "preschool": frozenset(
        {"enrolled", "barnkontakt", "barnteam_member", "stodsamordnare", "sip_participant"}
    ),
    "school": frozenset(
        {"enrolled", "barnkontakt", "barnteam_member", "stodsamordnare", "sip_participant"}
    ),
    "student_health": frozenset(
        {"enrolled", "barnteam_member", "stodsamordnare", "sip_participant"}
    ),
    "social_services": frozenset(
        {"case_open", "barnteam_member", "stodsamordnare", "sip_participant"}
    ),
    "health": frozenset(
        {"listed", "barnkontakt", "barnteam_member", "stodsamordnare", "sip_participant"}
    ),
    "police": frozenset({"case_open", "barnteam_member", "sip_participant"}),
    "oversight": frozenset(),
}


async def create_organisation(session: AsyncSession, *, body: OrganisationIn) -> Organisation:
    if await session.get(Organisation, body.id) is not None:
        raise Conflict(f"organisation {body.id!r} exists already")
    if body.kind in ("preschool", "school", "student_health", "social_services") and (
        body.municipality is None
    ):
        raise InvalidInput(
            f"/municipality: a {body.kind} organisation belongs to a municipality (kommunkod)",
            errors=[{"pointer": "/municipality", "detail": "required for this kind"}],
        )
    org = Organisation(**body.model_dump())
    session.add(org)
    try:
        await session.flush()
    except IntegrityError as err:
        raise Conflict(f"organisation {body.id!r} exists already") from err
    return org


async def list_organisations(session: AsyncSession) -> list[Organisation]:
    return list((await session.execute(select(Organisation).order_by(Organisation.id))).scalars())


async def get_organisation(session: AsyncSession, org_id: str) -> Organisation:
    org = await session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"no organisation {org_id!r}")
    return org


async def create_client(session: AsyncSession, *, body: ClientIn) -> tuple[ApiClient, str]:
    org = await session.get(Organisation, body.org)
    if org is None:
        raise NotFound(f"no organisation {body.org!r}; create it first")
    if org.kind == "oversight" and set(body.scopes) - {"audit:read", "followup:read", "admin"}:
        raise InvalidInput(
            "/scopes: an oversight organisation is never a party to sharing; "
            "it may hold audit:read, followup:read (and admin) only",
            errors=[{"pointer": "/scopes", "detail": "not allowed for kind oversight"}],
        )
    if org.kind != "oversight" and "audit:read" in body.scopes:
        raise InvalidInput(
            "/scopes: audit:read covers the whole deployment and is for auditors only "
            "(an organisation of kind oversight)",
            errors=[{"pointer": "/scopes", "detail": "audit:read needs kind oversight"}],
        )
    secret = new_secret()
    client = ApiClient(
        client_id=f"{org.id}.{secrets.token_hex(6)}",
        org_id=org.id,
        secret_hash=hash_secret(secret),
        scopes=sorted(set(body.scopes)),
    )
    session.add(client)
    await session.flush()
    return client, secret


async def disable_client(session: AsyncSession, *, client_id: str) -> ApiClient:
    client = await session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"no client {client_id!r}")
    client.disabled_at = client.disabled_at or utcnow()
    return client


def check_period(valid_from: datetime, valid_until: datetime | None) -> None:
    if valid_until is not None and valid_until <= valid_from:
        raise InvalidInput(
            "/valid_until: must be after valid_from",
            errors=[{"pointer": "/valid_until", "detail": "must be after valid_from"}],
        )


async def create_consent(
    session: AsyncSession, *, body: ConsentIn, pseudonym: str, org: str
) -> Consent:
    check_period(body.valid_from, body.valid_until)
    scope = body.scope
    for side in ("from", "to"):
        if not getattr(scope, f"{side}_kinds") and not getattr(scope, f"{side}_orgs"):
            raise InvalidInput(
                f"/scope: name {side}_kinds or {side}_orgs: a consent opens named parties only",
                errors=[{"pointer": f"/scope/{side}_kinds", "detail": "required"}],
            )
    consent = Consent(
        id=str(uuid.uuid4()),
        subject_pseudonym=pseudonym,
        recorded_by_org=org,
        given_by=sorted({g.role for g in body.given_by}),
        scope=scope.model_dump(),
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    session.add(consent)
    await session.flush()
    return consent


async def withdraw_consent(
    session: AsyncSession, *, consent_id: str, org: str, withdrawn_by: str | None
) -> Consent:
    """Only the organisation that recorded a consent withdraws it through the API; the first
    withdrawal stands (its time and who withdrew)."""
    consent = await session.get(Consent, consent_id, with_for_update=True)
    if consent is None or consent.recorded_by_org != org:
        raise NotFound(f"no consent {consent_id!r} recorded by your organisation")
    if consent.withdrawn_at is None:
        consent.withdrawn_at = utcnow()
        consent.withdrawn_by = withdrawn_by
    return consent


async def create_relationship(
    session: AsyncSession,
    *,
    body: RelationshipIn,
    pseudonym: str,
    caller_org: Organisation,
    for_org: Organisation,
) -> Relationship:
    check_period(body.valid_from, body.valid_until)
    if for_org.id != caller_org.id:
        await _check_convening(session, caller_org=caller_org, pseudonym=pseudonym, role=body.role)
    allowed = ROLES_BY_KIND[for_org.kind]
    if body.role not in allowed:
        raise InvalidInput(
            f"/role: a {for_org.kind} organisation cannot hold the role {body.role!r}",
            errors=[{"pointer": "/role", "detail": f"one of {sorted(allowed)}"}],
        )
    rel = Relationship(
        id=str(uuid.uuid4()),
        subject_pseudonym=pseudonym,
        org_id=for_org.id,
        role=body.role,
        declared_by_org=caller_org.id,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    session.add(rel)
    await session.flush()
    return rel


async def _check_convening(
    session: AsyncSession, *, caller_org: Organisation, pseudonym: str, role: str
) -> None:
    """Declaring for another organisation: only the child's barnkontakt, only barnteam_member."""
    if role != "barnteam_member":
        raise InvalidInput(
            "/role: for another organisation only barnteam_member can be declared",
            errors=[{"pointer": "/role", "detail": "must be barnteam_member"}],
        )
    roles = await active_roles(session, pseudonyms=[pseudonym], at=utcnow())
    if "barnkontakt" not in roles.get(pseudonym, {}).get(caller_org.id, set()):
        raise InvalidInput(
            "/org: only the child's barnkontakt convenes a barnteam",
            errors=[{"pointer": "/org", "detail": "you are not the barnkontakt"}],
        )


async def end_relationship(session: AsyncSession, *, rel_id: str, org: str) -> Relationship:
    rel = await session.get(Relationship, rel_id)
    if rel is None or org not in (rel.org_id, rel.declared_by_org):
        raise NotFound(f"no relationship {rel_id!r} of your organisation")
    if rel.ended_at is None:
        rel.ended_at = utcnow()
    return rel


def active(
    valid_from: datetime, valid_until: datetime | None, ended_at: datetime | None, at: datetime
) -> bool:
    return (
        valid_from <= at
        and (valid_until is None or at < valid_until)
        and (ended_at is None or at < ended_at)
    )


async def active_roles(
    session: AsyncSession, *, pseudonyms: list[str], at: datetime
) -> dict[str, dict[str, set[str]]]:
    """pseudonym -> organisation -> its active roles for that child at ``at``."""
    rows = (
        await session.execute(
            select(Relationship).where(Relationship.subject_pseudonym.in_(pseudonyms))
        )
    ).scalars()
    out: dict[str, dict[str, set[str]]] = {}
    for rel in rows:
        if active(rel.valid_from, rel.valid_until, rel.ended_at, at):
            out.setdefault(rel.subject_pseudonym, {}).setdefault(rel.org_id, set()).add(rel.role)
    return out


def consent_facts(consent: Consent | None, *, pseudonym: str) -> dict[str, Any] | None:
    """What the policy needs to know of a consent: no subject, only whether it matches."""
    if consent is None:
        return None
    return {
        "subject_matches": consent.subject_pseudonym == pseudonym,
        "withdrawn": consent.withdrawn_at is not None,
        "valid_from": consent.valid_from.isoformat().replace("+00:00", "Z"),
        "valid_until": consent.valid_until.isoformat().replace("+00:00", "Z"),
        "given_by": list(consent.given_by),
        "scope": dict(consent.scope),
    }
