"""The bundle build records the outcome of checking the policy data (``data.policy_data_check``,
``deploy/local/lib.sh record_policy_data_check``) so that OPA reads it instead of checking the
data at every query (``samsyn.ceiling.data_failures``). The record says what the check says:
the stack's bundle records no failure and OPA takes the record; data that widens the ceiling
is recorded as the fault it is; a policies directory that brings a record of its own is refused
(it could be of other data)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kit import REPO, opa_binary

pytestmark = pytest.mark.integration

LIB = REPO / "deploy/local/lib.sh"


def opa_result(url: str, path: str) -> Any:
    r = httpx.post(f"{url}/v1/data/{path}", json={"input": {}}, timeout=10)
    r.raise_for_status()
    return r.json()["result"]


def record(stage: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", 'source "$1" && record_policy_data_check "$2"', "_", str(LIB), str(stage)],
        capture_output=True,
        text=True,
    )


def evaluate(stage: Path, query: str) -> Any:
    out = subprocess.run(
        [opa_binary(), "eval", "--bundle", str(stage), "--format", "raw", query],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def test_stack_bundle_records_its_check(stack: dict[str, str]) -> None:
    """The stack's OPA (opa.sh's bundle) serves a record of this very data, with no failure."""
    url = stack["SAMSYN_OPA_URL"]
    assert opa_result(url, "policy_data_check")["failures"] == []
    assert opa_result(url, "samsyn/ceiling/data_check_recorded") is True
    assert opa_result(url, "samsyn/ceiling/data_failures") == []


def test_widened_data_is_recorded_as_a_fault(tmp_path: Path) -> None:
    """Data that lets mandatory reports go to the police too: the record lists the fault, and it
    is the record that OPA reads."""
    stage = tmp_path / "stage"
    shutil.copytree(REPO / "policies", stage)
    ground = stage / "data/grounds/mandatory_report/data.json"
    widened = json.loads(ground.read_text())
    widened["recipient_kinds"].append("police")
    ground.write_text(json.dumps(widened))
    done = record(stage)
    assert done.returncode == 0, done.stderr
    written = json.loads((stage / "policy_data_check/data.json").read_text())
    assert written["failures"] == ["config_exceeds_ceiling"]
    assert evaluate(stage, "data.samsyn.ceiling.data_check_recorded") is True
    assert evaluate(stage, "data.samsyn.ceiling.data_failures") == ["config_exceeds_ceiling"]


def test_a_record_in_the_policies_is_refused(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    shutil.copytree(REPO / "policies", stage)
    (stage / "policy_data_check").mkdir()
    (stage / "policy_data_check/data.json").write_text('{"sha256": "x", "failures": []}')
    done = record(stage)
    assert done.returncode != 0
    assert "policy_data_check" in done.stderr
    assert json.loads((stage / "policy_data_check/data.json").read_text())["sha256"] == "x"
