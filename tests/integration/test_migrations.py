"""The migrations give the schema the models describe, on the leg's database: after ``upgrade
head`` on an empty database, Alembic's comparison of the models with the database finds no
difference (a table, column, type, index or constraint in one and not the other). A model
change without its migration, or a migration the models do not follow, fails here."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import broker.app  # noqa: F401  (every model registered)
import consumers.models  # noqa: F401
from broker.infra.db import Base, make_engine
from broker.infra.migrate import upgrade_async
from tests.kit import new_postgres_database

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url(stack: dict[str, str], tmp_path: Path) -> str:
    if os.environ.get("SAMSYN_TEST_DB", "sqlite") == "postgres":
        return new_postgres_database(stack, f"migrations_{uuid.uuid4().hex[:10]}")
    return f"sqlite+aiosqlite:///{tmp_path}/migrations.db"


async def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    await upgrade_async(database_url)
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:

            def compare(sync_conn: Any) -> tuple[list[Any], set[str]]:
                found = compare_metadata(MigrationContext.configure(sync_conn), Base.metadata)
                indexes = {i["name"] for i in inspect(sync_conn).get_indexes("audit_records")}
                return found, indexes

            differences, audit_indexes = await conn.run_sync(compare)
    finally:
        await engine.dispose()
    assert differences == []
    # Unread, and a quarter of PostgreSQL's CPU per audit record written (migration 0012).
    assert "ix_audit_records_event_id" not in audit_indexes
    assert "ix_audit_subject_seq" in audit_indexes
