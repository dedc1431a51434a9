"""Admin, consent and relationship endpoints (contract sections 1, 2 and 5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.records import record
from broker.auth.deps import Admin, ConsentWriter, RelationshipWriter, StateDep
from broker.auth.tokens import Caller
from broker.infra.db import transaction
from broker.infra.kafka import REGISTRY
from broker.records import (
    AuditAction,
    ConsentCreated,
    ConsentWithdrawn,
    RegistryRecord,
    RelationshipCreated,
    RelationshipEnded,
)
from broker.registry import service
from broker.registry.schemas import (
    ClientIn,
    ClientOut,
    ConsentIn,
    Created,
    Ended,
    OrganisationIn,
    OrganisationOut,
    RelationshipIn,
)
from broker.runtime.state import AppState, get_state
from broker.subjects.input import subject_of
from broker.web.errors import InvalidInput
from broker.web.openapi import PROBLEMS

router = APIRouter()


def matches_contract(name: str) -> Any:
    """Check the body against ``schemas/requests/<name>.json`` (the published contract) first;
    the pydantic model then gives it types."""

    async def check(request: Request) -> None:
        try:
            body = await request.json()
        except ValueError:
            return  # not JSON at all: FastAPI's own parsing answers that
        errors = get_state(request).contracts.request_errors(name, body)
        if errors:
            raise InvalidInput(f"{errors[0]['pointer']}: {errors[0]['detail']}", errors=errors)

    return Depends(check)


async def _record_change(
    state: AppState,
    session: AsyncSession,
    caller: Caller,
    *,
    action: AuditAction,
    pseudonym: str | None = None,
    change: RegistryRecord | None = None,
    **audit: Any,
) -> None:
    """Put a change in ``registry.v1`` (keyed by the child, so the router sees it in order with
    the child's events) and in the audit trail before the SQL commit: a Kafka failure undoes
    all of it."""
    await session.flush()
    if change is not None and pseudonym is not None:
        await state.kafka_writer.send(REGISTRY, change, key=pseudonym)
    await state.emit_audit(
        record(
            action=action,
            outcome="ok",
            actor_org=caller.org,
            actor_client=caller.client_id,
            subject_pseudonym=pseudonym,
            **audit,
        )
    )


@router.post(
    "/v1/admin/organisations",
    status_code=201,
    response_model=OrganisationOut,
    responses=PROBLEMS,
    tags=["admin"],
)
async def create_organisation(body: OrganisationIn, caller: Admin, state: StateDep) -> Any:
    async with transaction(state.sessions) as session:
        org = await service.create_organisation(session, body=body)
        await _record_change(
            state,
            session,
            caller,
            action=AuditAction.ADMIN_ORGANISATION_CREATE,
            recipient_org=org.id,
        )
        return OrganisationOut(
            id=org.id,
            name=org.name,
            kind=org.kind,
            municipality=org.municipality,
        )


@router.get(
    "/v1/admin/organisations",
    response_model=list[OrganisationOut],
    responses=PROBLEMS,
    tags=["admin"],
)
async def list_organisations(caller: Admin, state: StateDep) -> Any:
    async with state.sessions() as session:
        orgs = await service.list_organisations(session)
    return [
        {"id": o.id, "name": o.name, "kind": o.kind, "municipality": o.municipality} for o in orgs
    ]


@router.post(
    "/v1/admin/clients",
    status_code=201,
    response_model=ClientOut,
    responses=PROBLEMS,
    tags=["admin"],
)
async def create_client(body: ClientIn, caller: Admin, state: StateDep) -> Any:
    async with transaction(state.sessions) as session:
        client, secret = await service.create_client(session, body=body)
        await _record_change(
            state,
            session,
            caller,
            action=AuditAction.ADMIN_CLIENT_CREATE,
            recipient_org=client.org_id,
            reasons=[f"client:{client.client_id}", *client.scopes],
        )
    return ClientOut(
        client_id=client.client_id, client_secret=secret, org=client.org_id, scopes=client.scopes
    )


@router.delete(
    "/v1/admin/clients/{client_id}",
    status_code=200,
    response_model=Ended,
    responses=PROBLEMS,
    tags=["admin"],
)
async def disable_client(client_id: str, caller: Admin, state: StateDep) -> Any:
    async with transaction(state.sessions) as session:
        client = await service.disable_client(session, client_id=client_id)
        await _record_change(
            state,
            session,
            caller,
            action=AuditAction.ADMIN_CLIENT_DISABLE,
            recipient_org=client.org_id,
            reasons=[f"client:{client_id}"],
        )
    state.forget_client(client_id)
    return Ended(id=client_id, status="disabled")


@router.post(
    "/v1/consents",
    status_code=201,
    response_model=Created,
    responses=PROBLEMS,
    tags=["consents"],
    dependencies=[matches_contract("consent")],
)
async def create_consent(body: ConsentIn, caller: ConsentWriter, state: StateDep) -> Any:
    pseudonym = state.keys.pseudonymiser.pseudonym(subject_of(body.subject, pointer="/subject"))
    async with transaction(state.sessions) as session:
        consent = await service.create_consent(
            session, body=body, pseudonym=pseudonym, org=caller.org
        )
        await _record_change(
            state,
            session,
            caller,
            action=AuditAction.CONSENT_CREATE,
            pseudonym=pseudonym,
            change=ConsentCreated(org=caller.org, client=caller.client_id, consent_id=consent.id),
            categories_shared=list(body.scope.categories),
            reasons=[f"consent:{consent.id}", *consent.given_by],
        )
    return Created(id=consent.id)


@router.post(
    "/v1/consents/{consent_id}/withdraw",
    status_code=200,
    response_model=Ended,
    responses=PROBLEMS,
    tags=["consents"],
)
async def withdraw_consent(consent_id: str, caller: ConsentWriter, state: StateDep) -> Any:
    async with transaction(state.sessions) as session:
        consent = await service.withdraw_consent(session, consent_id=consent_id, org=caller.org)
        await _record_change(
            state,
            session,
            caller,
            action=AuditAction.CONSENT_WITHDRAW,
            pseudonym=consent.subject_pseudonym,
            change=ConsentWithdrawn(org=caller.org, client=caller.client_id, consent_id=consent.id),
            reasons=[f"consent:{consent.id}"],
        )
    return Ended(id=consent_id, status="withdrawn")


@router.post(
    "/v1/relationships",
    status_code=201,
    response_model=Created,
    responses=PROBLEMS,
    tags=["relationships"],
    dependencies=[matches_contract("relationship")],
)
async def create_relationship(
    body: RelationshipIn, caller: RelationshipWriter, state: StateDep
) -> Any:
    pseudonym = state.keys.pseudonymiser.pseudonym(subject_of(body.subject, pointer="/subject"))
    async with transaction(state.sessions) as session:
        caller_org = await service.get_organisation(session, caller.org)
        for_org = (
            caller_org
            if body.org in (None, caller.org)
            else await service.get_organisation(session, body.org or "")
        )
        rel = await service.create_relationship(
            session, body=body, pseudonym=pseudonym, caller_org=caller_org, for_org=for_org
        )
        await _record_change(
            state,
            session,
            caller,
            action=AuditAction.RELATIONSHIP_CREATE,
            pseudonym=pseudonym,
            change=RelationshipCreated(
                org=caller.org,
                client=caller.client_id,
                relationship_id=rel.id,
                role=rel.role,
                for_org=rel.org_id,
            ),
            recipient_org=rel.org_id,
            reasons=[f"role:{rel.role}"],
        )
    return Created(id=rel.id)


@router.post(
    "/v1/relationships/{rel_id}/end",
    status_code=200,
    response_model=Ended,
    responses=PROBLEMS,
    tags=["relationships"],
)
async def end_relationship(rel_id: str, caller: RelationshipWriter, state: StateDep) -> Any:
    async with transaction(state.sessions) as session:
        rel = await service.end_relationship(session, rel_id=rel_id, org=caller.org)
        await _record_change(
            state,
            session,
            caller,
            action=AuditAction.RELATIONSHIP_END,
            pseudonym=rel.subject_pseudonym,
            change=RelationshipEnded(
                org=caller.org, client=caller.client_id, relationship_id=rel.id
            ),
            recipient_org=rel.org_id,
            reasons=[f"role:{rel.role}"],
        )
    return Ended(id=rel_id, status="ended")
