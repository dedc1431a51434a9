"""Alembic environment: runs migrations on the async engine from settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

# The imports register every table on Base.metadata, so autogenerate sees the whole schema.
import broker.audit.console.models
import broker.audit.followup.models
import broker.audit.models
import broker.followup.models
import broker.infra.positions
import broker.ingest.models
import broker.privacy.models
import broker.registry.models  # noqa: F401
import consumers.models
import consumers.webhooks.models  # noqa: F401
from broker.infra.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main())
