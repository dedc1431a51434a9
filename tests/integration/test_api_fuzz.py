"""Schemathesis against /openapi.json with every check, positive and negative: the document is
the contract, so what it calls valid is accepted and what it calls invalid is refused, with
no 5xx and no answer that breaks its own schema. As four kinds of caller (a school, social
services, an oversight organisation, the admin) and with an invalid token (settings and their
reasons in tests/schemathesis.toml, strategies for the custom formats in
tests/schemathesis_hooks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit import REPO, Samsyn

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
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
            "PYTHONPATH": str(REPO),
        },
    )
    assert run.returncode == 0, run.stdout[:12000] + run.stderr[-2000:]


@pytest.mark.parametrize(
    "who", ["school", "social_services", "oversight", "followup", "admin", "invalid"]
)
def test_no_server_errors_and_schema_conformance(samsyn: Samsyn, tmp_path: Path, who: str) -> None:
    """Every endpoint, fuzzed as each kind of caller (a school, social services, an auditor, a
    follow-up reader, the admin) and with a garbage token, answers as its OpenAPI document
    says."""
    if who in ("school", "social_services"):
        token = samsyn.org(who, "1460").token
    elif who == "oversight":
        token = samsyn.org("oversight", scopes=["audit:read"]).token
    elif who == "followup":
        token = samsyn.org("oversight", scopes=["followup:read"]).token
    elif who == "admin":
        token = samsyn.admin
    else:
        token = "not-a-token"
    fuzz(samsyn, token, tmp_path)
