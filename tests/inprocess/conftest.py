"""The in-process layer: what the HTTP API answers, on the app in this process
(tests/kit/inprocess.py) with a temporary SQLite database, an in-memory Kafka producer and a
real OPA server of the session's own on the repository's policies (the policy is the product:
ingest asks it for an admission verdict). No stack is needed, so `make check` runs these beside
the unit tests.

Here ``samsyn`` is that app, not a process: the kit's callers (``samsyn.org``, ``Org.call``)
work on it unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import Opa
from tests.kit.inprocess import InProcessSamsyn, start_inprocess

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def opa_url() -> Iterator[str]:
    opa = Opa()
    opa.start()
    yield opa.url
    opa.stop()


@pytest.fixture(scope="session")
def samsyn(tmp_path_factory: pytest.TempPathFactory, opa_url: str) -> Iterator[InProcessSamsyn]:
    db = tmp_path_factory.mktemp("inprocess") / "samsyn.db"
    app = start_inprocess(f"sqlite+aiosqlite:///{db}", opa_url=opa_url)
    yield app
    app.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.inprocess)
