"""The audit trail on the real stack, through the public API: what lands in it, who may read it,
and that tampering with the sealed chain in the database is caught by ``/v1/audit/verify``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests.kit import Org, Samsyn, Shared, audit_for, shared_and_read, start_samsyn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared(samsyn: Samsyn) -> Shared:
    return shared_and_read(samsyn, "1460")


@pytest.fixture(scope="module")
def auditor(samsyn: Samsyn) -> Org:
    return samsyn.org("oversight", scopes=["audit:read"])


def test_denial_is_in_the_trail_with_its_reasons(samsyn: Samsyn, shared: Shared) -> None:
    """A recipient the policy denies has a ``decision`` record with outcome deny, the policy's
    reasons, the withheld categories and the policy revision; the allowed one has allow."""
    records = {r["recipient_org"]: r for r in audit_for(samsyn, shared.event_id, 2)}
    denied = records[shared.polis.id]
    assert denied["outcome"] == "deny"
    assert denied["reasons"]
    assert all(isinstance(reason, str) and reason for reason in denied["reasons"])
    assert denied["categories_withheld"] == ["attendance"]
    assert denied["categories_shared"] == []
    assert denied["policy_revision"]
    assert denied["actor_org"] == shared.skola.id
    assert records[shared.eh.id]["outcome"] == "allow"


def test_feed_read_is_in_the_trail(samsyn: Samsyn, shared: Shared, auditor: Org) -> None:
    """Reading a delivery from the feed is a ``feed.read`` record with the child's pseudonym,
    the event id and the reading organisation; searching by the personnummer finds it."""
    (read,) = audit_for(samsyn, shared.event_id, 1, action="feed.read")
    decision = next(
        r for r in audit_for(samsyn, shared.event_id, 2) if r["recipient_org"] == shared.eh.id
    )
    assert read["outcome"] == "ok"
    assert read["recipient_org"] == shared.eh.id
    assert read["actor_org"] == shared.eh.id
    assert read["actor_client"] == shared.eh.client_id
    assert read["subject_pseudonym"]
    assert read["subject_pseudonym"] == decision["subject_pseudonym"]
    assert shared.barn not in str(read)
    r = auditor.call(
        "GET", "/v1/audit/records", params={"subject": shared.barn, "action": "feed.read"}
    )
    assert r.status_code == 200, r.text
    assert [i["seq"] for i in r.json()["items"]] == [read["seq"]]


@pytest.mark.parametrize(
    "path",
    ["/v1/audit/records", "/v1/audit/verify", "/v1/audit/export", "/v1/audit/subjects/{s}/extract"],
)
def test_audit_endpoints_need_audit_read(
    samsyn: Samsyn, shared: Shared, auditor: Org, path: str
) -> None:
    """Only ``audit:read`` opens the audit API: a client with every other non-admin scope gets
    403 and a call without a token 401, on every audit endpoint."""
    url = path.format(s=shared.barn)
    r = shared.eh.call("GET", url)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert samsyn.call("GET", url).status_code == 401
    assert auditor.call("GET", url).status_code == 200


def test_verify_is_ok_on_the_live_chain(samsyn: Samsyn, shared: Shared, auditor: Org) -> None:
    """The chain the running sealer builds verifies: ok, no first bad seq, a head hash."""
    audit_for(samsyn, shared.event_id, 1, action="feed.read")
    r = auditor.call("GET", "/v1/audit/verify")
    assert r.status_code == 200, r.text
    verdict = r.json()
    assert verdict["ok"] is True, verdict
    assert verdict["first_bad_seq"] is None
    assert verdict["records"] > 0
    assert len(verdict["head"]) == 64


def test_extract_lists_the_delivery_and_the_read(
    samsyn: Samsyn, shared: Shared, auditor: Org
) -> None:
    """The guardian's log extract (JSON and printable HTML) shows that student health received
    the event and read it, on which ground; the police's denied decision is not in it."""
    audit_for(samsyn, shared.event_id, 1, action="feed.read")
    url = f"/v1/audit/subjects/{shared.barn}/extract"
    r = auditor.call("GET", url)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["subject"] == shared.barn
    mine = [e for e in body["entries"] if e["event_id"] == shared.event_id]
    assert {(e["action"], e["organisation"]) for e in mine} == {
        ("decision", shared.eh.id),
        ("feed.read", shared.eh.id),
    }
    received = next(e for e in mine if e["action"] == "decision")
    assert received["source"] == shared.skola.id
    assert received["legal_ground"] == "consent"
    assert "attendance" in received["categories"]

    page = auditor.call("GET", url, params={"format": "html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Mottog / Received" in page.text
    assert "Läste (flöde) / Read (feed)" in page.text
    assert shared.eh.id in page.text
    assert shared.polis.id not in page.text


# Tampering: a Samsyn process of its own, so the shared chain of the other tests stays intact.


@dataclass(frozen=True)
class Sealed:
    """A sealed chain in its own SQLite file, served by a Samsyn without workers."""

    samsyn: Samsyn
    db: Path
    auditor: Org
    checkpoints: list[int]


def _export(auditor: Org) -> dict[str, Any]:
    r = auditor.call("GET", "/v1/audit/export")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _head_signed(auditor: Org, at_least: int, timeout: float = 30) -> int:
    """Wait until at least ``at_least`` records are sealed and a checkpoint signs the head."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chain = _export(auditor)
        head = chain["records"][-1]["seq"] if chain["records"] else 0
        if head >= at_least and chain["checkpoints"] and chain["checkpoints"][-1]["seq"] == head:
            return int(head)
        time.sleep(0.3)
    raise AssertionError(f"no checkpoint at a head of {at_least} records or more")


@pytest.fixture(scope="module")
def sealed(stack: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sealed]:
    """Seal two segments with a checkpoint after each, then serve the file with no sealer, so
    nothing appends to the chain or signs it again while the tests edit it."""
    db = tmp_path_factory.mktemp("tamper") / "samsyn.db"
    url = f"sqlite+aiosqlite:///{db}"
    first = start_samsyn(stack, url)
    try:
        # Each org() is two admin records (organisation, client).
        auditor = first.org("oversight", scopes=["audit:read"])
        first.org("school", "1461")
        c1 = _head_signed(auditor, at_least=4)
        first.org("health")
        c2 = _head_signed(auditor, at_least=c1 + 2)
    finally:
        first.stop()
    served = start_samsyn(stack, url, workers="[]")
    try:
        token = served.token(auditor.client_id, auditor.secret)
        yield Sealed(served, db, replace(auditor, samsyn=served, token=token), [c1, c2])
    finally:
        served.stop()


COLUMNS = (
    "record_id, time, actor_org, actor_client, action, subject_pseudonym, event_id, recipient_org,"
    " outcome, legal_ground, purpose, categories_shared, categories_withheld, reasons,"
    " policy_revision, decision_id, prev_hash, hash"
)


@pytest.fixture
def chain_db(sealed: Sealed) -> Iterator[sqlite3.Connection]:
    """The sealed chain's database, put back as it was after each test."""
    conn = sqlite3.connect(sealed.db, isolation_level=None)
    saved = conn.execute(f"SELECT seq, {COLUMNS} FROM audit_records ORDER BY seq").fetchall()  # noqa: S608
    try:
        yield conn
    finally:
        marks = ", ".join("?" * (len(saved[0])))
        conn.execute("BEGIN")
        conn.execute("DELETE FROM audit_records")
        conn.executemany(f"INSERT INTO audit_records (seq, {COLUMNS}) VALUES ({marks})", saved)  # noqa: S608
        conn.execute("COMMIT")
        conn.close()


def _verify(sealed: Sealed) -> dict[str, Any]:
    r = sealed.auditor.call("GET", "/v1/audit/verify")
    assert r.status_code == 200, r.text
    verdict: dict[str, Any] = r.json()
    return verdict


def _swap(conn: sqlite3.Connection, a: int, b: int) -> None:
    """Exchange the contents of records ``a`` and ``b``, each keeping its seq."""
    rows = {
        seq: rest
        for seq, *rest in conn.execute(
            f"SELECT seq, {COLUMNS} FROM audit_records WHERE seq IN (?, ?)",  # noqa: S608
            (a, b),
        )
    }
    sets = ", ".join(f"{c.strip()} = ?" for c in COLUMNS.split(","))
    conn.execute("BEGIN")
    conn.execute("UPDATE audit_records SET record_id = 'swap' WHERE seq = ?", (a,))
    conn.execute(f"UPDATE audit_records SET {sets} WHERE seq = ?", (*rows[a], b))  # noqa: S608
    conn.execute(f"UPDATE audit_records SET {sets} WHERE seq = ?", (*rows[b], a))  # noqa: S608
    conn.execute("COMMIT")


def test_edited_record_is_caught(sealed: Sealed, chain_db: sqlite3.Connection) -> None:
    """An SQL UPDATE of one field of sealed record 3 makes verify answer ok=false at seq 3."""
    assert _verify(sealed)["ok"] is True
    chain_db.execute("UPDATE audit_records SET recipient_org = 'someone-else' WHERE seq = 3")
    verdict = _verify(sealed)
    assert verdict["ok"] is False
    assert verdict["first_bad_seq"] == 3


def test_deleted_record_is_caught(sealed: Sealed, chain_db: sqlite3.Connection) -> None:
    """Deleting sealed record 2 from the middle makes verify answer ok=false at seq 2."""
    assert _verify(sealed)["ok"] is True
    chain_db.execute("DELETE FROM audit_records WHERE seq = 2")
    verdict = _verify(sealed)
    assert verdict["ok"] is False
    assert verdict["first_bad_seq"] == 2


def test_swapped_records_are_caught(sealed: Sealed, chain_db: sqlite3.Connection) -> None:
    """Swapping the contents of records 2 and 3 (reordering) makes verify fail at seq 2."""
    assert _verify(sealed)["ok"] is True
    _swap(chain_db, 2, 3)
    verdict = _verify(sealed)
    assert verdict["ok"] is False
    assert verdict["first_bad_seq"] == 2


def test_truncated_tail_is_caught(sealed: Sealed, chain_db: sqlite3.Connection) -> None:
    """Cutting off every record after the first checkpoint leaves a consistent chain, but the
    second signed checkpoint points past its end: ok=false at the first missing seq."""
    c1, _ = sealed.checkpoints
    assert _verify(sealed)["ok"] is True
    chain_db.execute("DELETE FROM audit_records WHERE seq > ?", (c1,))
    verdict = _verify(sealed)
    assert verdict["ok"] is False
    assert verdict["first_bad_seq"] == c1 + 1
    assert verdict["records"] == c1
