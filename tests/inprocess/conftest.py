"""The in-process layer: what the HTTP API answers, on the app in this process
(tests/kit/inprocess.py) with a temporary database (SQLite; PostgreSQL on that leg), an in-memory
Kafka producer and a real OPA server of the session's own on the repository's policies (the
policy is the product: ingest asks it for an admission verdict). On SQLite no stack is needed,
so `make check` runs these beside the unit tests.

Here ``samsyn`` is that app, not a process: the kit's callers (``samsyn.org``, ``Org.call``)
work on it unchanged."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import Opa, new_postgres_database
from tests.kit.inprocess import InProcessSamsyn, start_inprocess

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def opa_url() -> Iterator[str]:
    opa = Opa()
    opa.start()
    yield opa.url
    opa.stop()


@pytest.fixture(scope="session")
def inprocess_database(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    """A temporary SQLite database; on the PostgreSQL leg (SAMSYN_TEST_DB=postgres) a new
    database on the stack's cluster, so that "writes nothing" holds on both."""
    if os.environ.get("SAMSYN_TEST_DB", "sqlite") == "postgres":
        stack: dict[str, str] = request.getfixturevalue("stack")
        return new_postgres_database(stack, f"samsyn_{uuid.uuid4().hex[:10]}")
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('inprocess') / 'samsyn.db'}"


@pytest.fixture(scope="session")
def samsyn(inprocess_database: str, opa_url: str) -> Iterator[InProcessSamsyn]:
    app = start_inprocess(inprocess_database, opa_url=opa_url)
    yield app
    app.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.inprocess)
