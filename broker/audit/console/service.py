"""Local auditor accounts: create or reset, disable, and check a password at login."""

from __future__ import annotations

import re
from functools import cache

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.console.models import AuditorAccount
from broker.infra.db import transaction, utcnow
from broker.registry.bootstrap import ensure_oversight_org
from broker.registry.schemas import OrgId
from broker.registry.secrets import hash_secret, new_secret, secret_matches
from broker.web.errors import Conflict, InvalidInput, NotFound

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@cache
def _decoy_hash() -> str:
    """Checked when the name is unknown, so a wrong name costs as much as a wrong password."""
    return hash_secret(new_secret())


async def upsert_auditor(
    sessions: async_sessionmaker[AsyncSession], *, name: str, password: str, org_id: str
) -> None:
    """Create the auditor, or give an existing one a new password and enable it again.

    The organisation is created with kind ``oversight`` if missing; an existing organisation of
    another kind is refused, since the console shows the whole deployment's trail.
    """
    if not NAME.fullmatch(name):
        raise InvalidInput(f"auditor name {name!r}: letters, digits and . _ @ -, at most 64")
    try:
        TypeAdapter(OrgId).validate_python(org_id)
    except ValidationError as err:
        raise InvalidInput(f"organisation id {org_id!r} is not valid") from err
    async with transaction(sessions) as session:
        org = await ensure_oversight_org(session, org_id, name=f"Tillsyn / Oversight ({org_id})")
        if org.kind != "oversight":
            raise Conflict(f"organisation {org_id!r} is of kind {org.kind!r}, not 'oversight'")
        account = await session.get(AuditorAccount, name)
        if account is None:
            session.add(
                AuditorAccount(name=name, org_id=org_id, password_hash=hash_secret(password))
            )
        else:
            account.org_id = org_id
            account.password_hash = hash_secret(password)
            account.disabled_at = None


async def disable_auditor(sessions: async_sessionmaker[AsyncSession], *, name: str) -> None:
    """Disable the account; its open console sessions stop working at their next request."""
    async with transaction(sessions) as session:
        account = await session.get(AuditorAccount, name)
        if account is None:
            raise NotFound(f"no auditor {name!r}")
        account.disabled_at = account.disabled_at or utcnow()


async def active_auditor(session: AsyncSession, name: str) -> AuditorAccount | None:
    account = await session.get(AuditorAccount, name)
    return account if account is not None and account.disabled_at is None else None


async def authenticate(session: AsyncSession, name: str, password: str) -> AuditorAccount | None:
    """The enabled account whose password this is, or None."""
    account = await active_auditor(session, name)
    if account is None:
        secret_matches(_decoy_hash(), password)
        return None
    return account if secret_matches(account.password_hash, password) else None
