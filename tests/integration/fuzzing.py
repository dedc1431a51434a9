"""Schemathesis against /openapi.json with every check, positive and negative: the document is
the contract, so what it calls valid is accepted and what it calls invalid is refused, with
no 5xx and no answer that breaks its own schema (settings and their reasons in
tests/schemathesis.toml, strategies for the custom formats in tests/schemathesis_hooks.py).

The callers are fuzzed from three test files (test_api_fuzz*.py), two each, so that the parallel
sessions of `make test` (one file per session) run them side by side: one run takes about a
minute, and six in one session were the longest path of the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.kit import REPO, Samsyn

ST = Path(sys.executable).with_name("st")
CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"


def token_of(samsyn: Samsyn, who: str) -> str:
    """A token of this kind of caller: a school, social services, an auditor, a follow-up
    reader, the admin, or ``invalid`` (garbage)."""
    if who in ("school", "social_services"):
        return samsyn.org(who, "1460").token
    if who == "oversight":
        return samsyn.org("oversight", scopes=["audit:read"]).token
    if who == "followup":
        return samsyn.org("oversight", scopes=["followup:read"]).token
    if who == "admin":
        return samsyn.admin
    return "not-a-token"


# What each caller's run is made of. The coverage phase derives its requests from the document
# alone, the same for every caller; with a garbage token each of them meets the same 401 before
# anything reads it, so that caller runs the examples and the random requests only (timed alone
# on the 2-core machine, schemathesis's own CPU was 23 s of that run's 27 s).
PHASES = {"invalid": "examples,fuzzing"}
ALL_PHASES = "examples,coverage,fuzzing"


def fuzz(samsyn: Samsyn, token: str, tmp_path: Path, phases: str, examples: int = 15) -> None:
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
            phases,
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


def _param(who: str) -> Any:
    """A garbage token is refused before any query: nothing in its run depends on the
    database, so only the SQLite leg runs it."""
    return pytest.param(who, marks=pytest.mark.one_database) if who == "invalid" else who


def fuzzed_as(*callers: str) -> Callable[[Samsyn, Path, str], None]:
    """The test of a test_api_fuzz*.py file: every endpoint, fuzzed as each of these callers,
    answers as its OpenAPI document says."""

    @pytest.mark.integration
    @pytest.mark.parametrize("who", [_param(c) for c in callers])
    def test_no_server_errors_and_schema_conformance(
        samsyn: Samsyn, tmp_path: Path, who: str
    ) -> None:
        fuzz(samsyn, token_of(samsyn, who), tmp_path, PHASES.get(who, ALL_PHASES))

    return test_no_server_errors_and_schema_conformance
