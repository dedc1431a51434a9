"""A sample check is reproducible: the recorded seed draws the same reads again, in another
process too (string hashing is randomised per process; the sample must not depend on it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from broker.audit.followup.samples import draw, month_span
from broker.web.errors import InvalidInput

POPULATION = list(range(1000, 3000, 3))


def test_the_same_seed_draws_the_same_sample() -> None:
    first = draw(POPULATION, "b7e1c2d3", 10)
    assert draw(list(reversed(POPULATION)), "b7e1c2d3", 10) == first
    assert len(set(first)) == 10
    assert set(first) <= set(POPULATION)
    assert first == sorted(first)
    assert draw(POPULATION, "another-seed", 10) != first


def test_the_same_seed_draws_the_same_sample_in_another_process() -> None:
    here = draw(POPULATION, "b7e1c2d3", 10)
    code = (
        "import json; from broker.audit.followup.samples import draw; "
        "print(json.dumps(draw(list(range(1000, 3000, 3)), 'b7e1c2d3', 10)))"
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(out.stdout) == here


def test_a_small_population_is_taken_whole() -> None:
    assert draw([5, 3, 9], "x", 10) == [3, 5, 9]
    assert draw([], "x", 10) == []


def test_months() -> None:
    assert month_span("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert month_span("2026-02")[1] == datetime(2026, 3, 1, tzinfo=UTC)
    for bad in ("2026-13", "2026-1", "26-01", ""):
        with pytest.raises(InvalidInput):
            month_span(bad)
