"""The follow-up on the real stack: events in through the API, counted by the follow-up worker,
published as fixed tables with small cells withheld, every read audited, and nothing in the
store that names a child."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from broker.demo.story import iso
from broker.followup.catalogue import AGE_BANDS, LEVELS, school_year
from broker.infra.db import make_engine
from tests.kit import (
    Org,
    Samsyn,
    audit_for,
    child,
    eventually,
    new_postgres_database,
    start_samsyn,
)

pytestmark = pytest.mark.integration


def dump(database_url: str, *tables: str) -> tuple[str, list[str]]:
    """Every row of ``tables`` as text (bytes in hex and as latin-1), and the pseudonyms the
    broker holds for accepted events."""

    async def read() -> tuple[str, list[str]]:
        engine = make_engine(database_url)
        try:
            async with engine.connect() as conn:
                parts: list[str] = []
                for table in tables:
                    for row in await conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                        for value in row:
                            if isinstance(value, bytes | memoryview):
                                raw = bytes(value)
                                parts += [raw.hex(), raw.decode("latin-1")]
                            else:
                                parts.append(str(value))
                found = await conn.execute(text("SELECT subject_pseudonym FROM accepted_events"))
                return "\n".join(parts), [str(p) for (p,) in found]
        finally:
            await engine.dispose()

    return asyncio.run(read())


def concern(org: Org, barn: str, level: int, days: float = 0) -> dict[str, Any]:
    env = org.envelope(
        barn,
        "concern.raised",
        {"areas": ["omsorg"], "level": level},
        purpose="early_support",
        basis="care_support_u18",
    )
    env["time"] = iso(days)
    return env


def cell(table: dict[str, Any], period: str, muni: str, dim: str = "*", value: str = "*") -> Any:
    (found,) = [
        c["count"]
        for c in table["cells"]
        if (c["period"], c["municipality"], c["dim"], c["value"]) == (period, muni, dim, value)
    ]
    return found


@pytest.fixture
def own(stack: dict[str, str], tmp_path: Path) -> Iterator[tuple[Samsyn, str]]:
    """A Samsyn of this test's own, with its database: the cells of the whole cooperation and
    of "no municipality" count every event a Samsyn sees, so another test's events (the
    Dalsland year of the console test, say) must not be in them."""
    if os.environ.get("SAMSYN_TEST_DB", "sqlite") == "postgres":
        url = new_postgres_database(stack, f"samsyn_followup_{uuid.uuid4().hex[:8]}")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/followup.db"
    server = start_samsyn(stack, url)
    yield server, url
    server.stop()


def test_counts_are_published_whole_with_small_cells_withheld_and_reads_audited(
    own: tuple[Samsyn, str],
) -> None:
    """In a municipality of its own, six ten-year-olds, five fourteen-year-olds and one
    sixteen-year-old get a concern 20 days ago, five of the ten-year-olds a barnteam today; the
    region's health centre (no municipality) raises five concerns and convenes five barnteams.
    The year's concerns table shows 12 for the municipality, 5 without one, 17 in all; "<5"
    for 16-17 and level 4, with complements withheld so that no "<5" is the total minus the
    rest and the withheld cells of a row hold at least five together; the CSV says the same;
    "how early" shows a median of 20 days from five children. Each read is
    in the audit trail; a client without the scope is refused; a malformed school year is a
    422 problem."""
    samsyn, database_url = own
    muni = f"0{random.randint(100, 999)}"  # a municipality only this test uses
    soc = samsyn.org("social_services", muni)
    vc = samsyn.org("health")
    lead = samsyn.org("oversight", scopes=["followup:read"])
    year = school_year(datetime.now(UTC).date())
    young, middle, teen = [child(10) for _ in range(6)], [child(14) for _ in range(5)], child(16)
    small = [child(8) for _ in range(5)]
    for group, level in ((young, 2), (middle, 3), ([teen], 4)):
        for barn in group:
            soc.publish(concern(soc, barn, level, days=-20), wait=False)
    for barn in small:
        vc.publish(concern(vc, barn, 1, days=-20), wait=False)
    for org, group in ((soc, young[:5]), (vc, small)):
        for barn in group:
            env = org.envelope(
                barn,
                "barnteam.convened",
                {"meeting_at": iso(1), "participants": [org.id]},
                purpose="child_plan",
                basis="care_support_u18",
            )
            org.publish(env, wait=False)

    def counted() -> dict[str, Any] | None:
        r = lead.call("GET", "/v1/followup/tables/concerns", params={"year": year})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        # Every concern counted, the municipality's and the region's (they arrive apart).
        return body if (cell(body, year, muni), cell(body, year, "all")) == (12, 17) else None

    # The session's Samsyn counts every other test's events too: allow for a busy machine.
    table = eventually(counted, "the concerns counted", timeout=240)
    assert table["min_children"] == 5
    assert cell(table, year, "none") == 5
    assert cell(table, year, "all") == 17
    for dim, values in (("age", AGE_BANDS), ("level", LEVELS)):
        row = [cell(table, year, muni, dim, v) for v in values]
        assert row.count("<5") >= 2, row  # one alone would be the total minus the rest
        # What the withheld cells hold together (12 minus the published) is no small number.
        assert 12 - sum(v for v in row if v != "<5") >= 5, row
    assert cell(table, year, muni, "age", "16-17") == "<5"
    assert cell(table, year, muni, "level", "4") == "<5"
    assert len(table["periods"]) == 12 + 4 + 1

    r = lead.call("GET", "/v1/followup/tables/concerns", params={"year": year, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["period", "municipality", "dim", "value", "count"]
    assert [year, muni, "age", "16-17", "<5"] in rows
    assert [year, muni, "*", "*", "12"] in rows
    assert len(rows) == 1 + len(table["cells"])

    def early() -> dict[str, Any] | None:
        r = lead.call("GET", "/v1/followup/early", params={"year": year})
        assert r.status_code == 200, r.text
        (row,) = [x for x in r.json()["rows"] if x["municipality"] == muni]
        barnteam: dict[str, Any] = row["days_from_first_concern"]["barnteam"]
        return barnteam if barnteam["children"] == 5 else None

    barnteam = eventually(early, "the barnteam milestones counted", timeout=60)
    assert barnteam["median"] == 20

    reads = audit_for(samsyn, None, 3, action="followup.read", actor_org=lead.id)
    assert f"school_year:{year}" in reads[0]["reasons"]
    assert "table:concerns" in reads[0]["reasons"]
    assert reads[0]["subject_pseudonym"] is None

    refused = soc.call("GET", "/v1/followup/tables/concerns")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    bad = lead.call("GET", "/v1/followup/tables/concerns", params={"year": "2025-26"})
    assert bad.status_code == 422
    assert lead.call("GET", "/v1/followup/tables/nope").status_code == 404

    # The store: no personnummer (either form) and no pseudonym of any child, in any column.
    stored, pseudonyms = dump(database_url, "followup_counts", "followup_ledgers")
    assert pseudonyms
    for barn in [*young, *middle, teen, *small]:
        assert barn not in stored
        assert barn[2:] not in stored
    for pseudonym in pseudonyms:
        assert pseudonym not in stored
        assert pseudonym.split(":")[-1] not in stored


def test_a_shredded_childs_milestones_are_gone(own: tuple[Samsyn, str]) -> None:
    """Six children in a municipality of their own get a concern 20 days ago; one of them is
    erased (its data key shredded) before its barnteam today. The other five count from their
    first concern (n=5, median 20 days); the erased child's barnteam finds no ledger it can
    open, so nothing remembers its concern and it adds no "how early" at all."""
    samsyn, _ = own
    muni = f"0{random.randint(100, 999)}"
    soc = samsyn.org("social_services", muni)
    vc = samsyn.org("health")  # five more beside them, so that no row is a lone small one
    lead = samsyn.org("oversight", scopes=["followup:read"])
    year = school_year(datetime.now(UTC).date())
    children = [child(12) for _ in range(6)]
    others = [child(7) for _ in range(5)]
    for org, group in ((soc, children), (vc, others)):
        for barn in group:
            org.publish(concern(org, barn, 2, days=-20))
    erased = children[0]

    def concerns_counted() -> bool:
        r = lead.call("GET", "/v1/followup/tables/concerns", params={"year": year})
        return bool(cell(r.json(), year, muni) == 6)

    eventually(concerns_counted, "the concerns counted", timeout=240)
    r = samsyn.call(
        "POST",
        f"/v1/admin/subjects/{erased}/shred",
        samsyn.admin,
        json={"reason": "Fel personnummer / wrong personnummer (test)"},
    )
    assert r.status_code == 200, r.text
    for org, group in ((soc, children), (vc, others)):
        for barn in group:
            env = org.envelope(
                barn,
                "barnteam.convened",
                {"meeting_at": iso(1), "participants": [org.id]},
                purpose="child_plan",
                basis="care_support_u18",
            )
            org.publish(env)

    def barnteams() -> Any:
        r = lead.call("GET", "/v1/followup/tables/barnteam", params={"year": year})
        return cell(r.json(), year, muni) == 6

    eventually(barnteams, "the six barnteams counted", timeout=240)
    r = lead.call("GET", "/v1/followup/early", params={"year": year})
    (row,) = [x for x in r.json()["rows"] if x["municipality"] == muni]
    assert row["days_from_first_concern"]["barnteam"] == {
        "children": 5,
        "q1": 20,
        "median": 20,
        "q3": 20,
    }
