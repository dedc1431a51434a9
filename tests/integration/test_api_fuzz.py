"""Schemathesis against /openapi.json: no 5xx and no response that breaks its own schema, with
valid tokens of each kind of caller and with an invalid token (settings and their reasons in
tests/schemathesis.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Samsyn

pytestmark = pytest.mark.integration
ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"


def fuzz(samsyn: Samsyn, token: str, tmp_path: Path, examples: int = 15) -> None:
    run = subprocess.run(
        [
            str(ST),
            "--config-file",
            str(CONFIG),
            "run",
            f"{samsyn.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            str(examples),
            "--seed",
            "20261126",
            "--no-color",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[:12000] + run.stderr[-2000:]


@pytest.mark.parametrize("who", ["sharing", "auditor", "followup", "admin", "invalid"])
def test_no_server_errors_and_schema_conformance(samsyn: Samsyn, tmp_path: Path, who: str) -> None:
    """Every endpoint, fuzzed as a sharing organisation, an auditor, a follow-up reader, the
    admin and a caller with a garbage token, answers without 5xx and as its OpenAPI document
    says."""
    if who == "sharing":
        token = samsyn.org("social_services", "1460").token
    elif who == "auditor":
        token = samsyn.org("oversight", scopes=["audit:read"]).token
    elif who == "followup":
        token = samsyn.org("oversight", scopes=["followup:read"]).token
    elif who == "admin":
        token = samsyn.admin
    else:
        token = "not-a-token"
    fuzz(samsyn, token, tmp_path)
