"""Shared fixtures: one real stack and one Samsyn process per test session.

``SAMSYN_TEST_DB`` chooses the database leg: ``sqlite`` (default) or ``postgres`` (the stack's
throwaway PostgreSQL cluster). Integration tests never skip because a component is missing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import REPO, Samsyn, new_postgres_database, stack_env, start_samsyn
from tests.kit.stack import drop_made_databases


@pytest.fixture(scope="session")
def stack() -> Iterator[dict[str, str]]:
    yield stack_env()
    drop_made_databases()


@pytest.fixture(scope="session")
def database_url(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    if os.environ.get("SAMSYN_TEST_DB", "sqlite") == "postgres":
        return new_postgres_database(stack, f"samsyn_{uuid.uuid4().hex[:10]}")
    path: Path = tmp_path_factory.mktemp("db") / "samsyn.db"
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def samsyn(stack: dict[str, str], database_url: str) -> Iterator[Samsyn]:
    s = start_samsyn(stack, database_url)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
