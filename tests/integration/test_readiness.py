"""/readyz really checks Kafka, OPA and the database, and names what is down."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support import Samsyn, free_port, start_samsyn

pytestmark = pytest.mark.integration


def test_ready_names_every_check(samsyn: Samsyn) -> None:
    """On the running stack /readyz is 200 with Kafka, OPA and the database each ok, and each
    Kafka worker the process runs making progress."""
    r = samsyn.http.get(samsyn.url + "/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {
        "database": "ok",
        "kafka": "ok",
        "opa": "ok",
        "materializer": "ok",
        "router": "ok",
        "sealer": "ok",
        "followup": "ok",
    }


def test_kafka_down_is_503_naming_kafka(stack: dict[str, str], tmp_path: Path) -> None:
    """With no Kafka at its address the process still starts, /healthz is 200, /readyz is 503
    problem+json naming Kafka (and only Kafka)."""
    dead = f"127.0.0.1:{free_port()}"
    s = start_samsyn(
        {**stack, "SAMSYN_KAFKA_BOOTSTRAP": dead},
        f"sqlite+aiosqlite:///{tmp_path}/nokafka.db",
        workers="[]",
        ready=False,
    )
    try:
        assert httpx.get(s.url + "/healthz").status_code == 200
        r = httpx.get(s.url + "/readyz", timeout=30)
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["checks"] == {"database": "ok", "kafka": "down", "opa": "ok"}
        assert r.json()["detail"] == "down: kafka"
    finally:
        s.stop()
