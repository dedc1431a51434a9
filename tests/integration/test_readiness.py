"""/readyz really checks Kafka, OPA, the policy data and the database, and names what is
down."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.kit import REPO, Opa, Samsyn, free_port, start_samsyn

pytestmark = pytest.mark.integration


ALL_OK = {"database": "ok", "kafka": "ok", "opa": "ok", "policy_data": "ok"}


def test_ready_names_every_check(samsyn: Samsyn) -> None:
    """On the running stack /readyz is 200 with Kafka, OPA, its policy data and the database
    ok, and each Kafka worker the process runs making progress."""
    r = samsyn.http.get(samsyn.url + "/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {
        **ALL_OK,
        "materializer": "ok",
        "router": "ok",
        "sealer": "ok",
        "followup": "ok",
        "subject_keys": "ok",
    }


def test_policy_data_past_the_ceiling_is_503_naming_it(
    stack: dict[str, str], tmp_path: Path
) -> None:
    """Policy data that widens a ground past the shipped ceiling (the reporting ground's age
    bound raised to 21) is a policy fault when it is loaded: /readyz is 503 naming policy_data,
    OPA itself being up."""
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    ground = policies / "data/grounds/mandatory_report/data.json"
    record = json.loads(ground.read_text())
    ground.write_text(json.dumps({**record, "age_below": 21}))
    opa = Opa(policies=policies)
    opa.start()
    s = start_samsyn(
        {**stack, "SAMSYN_OPA_URL": opa.url},
        f"sqlite+aiosqlite:///{tmp_path}/widened.db",
        workers="[]",
        ready=False,
    )
    try:
        r = httpx.get(s.url + "/readyz", timeout=30)
        assert r.status_code == 503
        checks = r.json()["checks"]
        # (Kafka may be down too: with no workers here nothing has created this run's topics.)
        assert checks["policy_data"] == "down"
        assert checks["opa"] == checks["database"] == "ok"
        assert "policy_data" in r.json()["detail"]
    finally:
        s.stop()
        opa.stop()


def test_kafka_down_is_503_naming_kafka(stack: dict[str, str], tmp_path: Path) -> None:
    """With no Kafka at its address the process still starts, /healthz is 200, /readyz is 503
    problem+json naming Kafka and what waits for it: the children's data keys, which are handed
    out only once keys.v1 is imported."""
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
        assert r.json()["checks"] == {**ALL_OK, "kafka": "down", "subject_keys": "down"}
        assert r.json()["detail"] == "down: kafka, subject_keys"
    finally:
        s.stop()
