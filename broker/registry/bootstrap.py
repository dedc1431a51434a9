"""The first admin client, from ``SAMSYN_ADMIN_CLIENT_ID``/``SAMSYN_ADMIN_CLIENT_SECRET``, so a
fresh deployment can be provisioned without touching the database."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.infra.db import transaction
from broker.registry.models import ApiClient, Organisation
from broker.registry.secrets import hash_secret, secret_matches

OPERATOR_ORG = "samsyn-operator"


async def ensure_admin_client(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if not (settings.admin_client_id and settings.admin_client_secret):
        return
    secret = settings.admin_client_secret.get_secret_value()
    await upsert_client(
        sessions, client_id=settings.admin_client_id, secret=secret, scopes=["admin"]
    )


async def upsert_client(
    sessions: async_sessionmaker[AsyncSession],
    *,
    client_id: str,
    secret: str,
    scopes: list[str],
    org_id: str = OPERATOR_ORG,
) -> None:
    """Create or update a client of the operator organisation (kind ``oversight``)."""
    async with transaction(sessions) as session:
        await ensure_oversight_org(session, org_id, name="Samsyn drift / operations")
        client = await session.get(ApiClient, client_id)
        if client is None:
            session.add(
                ApiClient(
                    client_id=client_id,
                    org_id=org_id,
                    secret_hash=hash_secret(secret),
                    scopes=sorted(scopes),
                )
            )
        else:
            if not secret_matches(client.secret_hash, secret):
                client.secret_hash = hash_secret(secret)
            client.scopes = sorted(scopes)
            client.disabled_at = None


async def ensure_oversight_org(session: AsyncSession, org_id: str, *, name: str) -> Organisation:
    """The organisation ``org_id``, created with kind ``oversight`` if it does not exist yet."""
    org = await session.get(Organisation, org_id)
    if org is None:
        org = Organisation(id=org_id, name=name, kind="oversight", municipality=None)
        session.add(org)
        await session.flush()
    return org
