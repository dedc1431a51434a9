"""The restore drill of docs/operations.md, performed: back up PostgreSQL with ``pg_dump`` while
events flow, restore it into a fresh database and start Samsyn on it with the same Kafka.

What must come back: the registry (organisations, clients, consents, relationships), the feeds
and the audit chain; what the backup missed, the read model and the chain take again from Kafka
(each read-side consumer resumes from the positions stored beside its rows), the data keys of
children first seen after it from keys.v1; nothing is delivered twice, and the restored chain
ends in the very head the original had. What must not come back: the key of a child shredded
after the backup.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from broker.web.cursors import encode_cursor
from tests.kit import (
    Org,
    Samsyn,
    child,
    eventually,
    new_postgres_database,
    start_samsyn,
)

pytestmark = [pytest.mark.integration, pytest.mark.restore, pytest.mark.slow]

BEFORE, DURING = 20, 40


def postgres_tool(name: str) -> str:
    """A PostgreSQL client program of the stack's server version (Debian's layout)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    assert found, f"{name} is not installed (deploy/local/install.sh postgres)"
    return str(found[-1])


def libpq_url(async_url: str) -> str:
    return async_url.replace("postgresql+asyncpg://", "postgresql://")


def restore(stack: dict[str, str], backup: Path) -> str:
    """``pg_restore`` of the backup into a new database of the stack; that database's URL."""
    url = new_postgres_database(stack, f"samsyn_restored_{uuid.uuid4().hex[:8]}")
    subprocess.run(
        [postgres_tool("pg_restore"), "--no-owner", "-d", libpq_url(url), str(backup)], check=True
    )
    return url


def backed_up_deliveries(url: str) -> int:
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(libpq_url(url))
        try:
            n: int = await conn.fetchval(
                "SELECT count(*) FROM feed_items WHERE type LIKE '%mandatory.report%'"
            )
            return n
        finally:
            await conn.close()

    return asyncio.run(count())


def report(school: Org, subject: str) -> dict[str, object]:
    return school.envelope(
        subject,
        "mandatory.report",
        {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv anmälan."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )


def on(samsyn: Samsyn, org: Org) -> Org:
    """The same organisation and client, with a token from ``samsyn``."""
    return Org(
        samsyn, org.id, org.kind, org.client_id, org.secret, samsyn.token(org.client_id, org.secret)
    )


def sealed(auditor: Org, at_least: int) -> dict[str, Any] | None:
    """The verify answer once the chain verifies and holds ``at_least`` records."""
    verdict: dict[str, Any] = auditor.call("GET", "/v1/audit/verify").json()
    assert verdict["ok"] is True, verdict
    return verdict if verdict["records"] >= at_least else None


def deliveries(org: Org, ids: set[str]) -> Counter[str] | None:
    """How often each of ``ids`` is in the feed, once all of them are."""
    found = Counter(i["event_id"] for i in org.feed() if i["event_id"] in ids)
    return found if set(found) == ids else None


@pytest.mark.parametrize("children_during_backup", ["known", "new"])
def test_backup_taken_under_load_restores_and_catches_up(
    stack: dict[str, str], tmp_path: Path, children_during_backup: str
) -> None:
    """pg_dump while events flow, pg_restore into a fresh database, Samsyn on it: feeds,
    consents and the chain come back, the read model catches up, nothing is delivered twice.
    Reports during the backup are about children known before it ("known") or first seen
    during it ("new"): their data keys, which the backup may lack, come back from keys.v1."""
    original_url = new_postgres_database(stack, f"samsyn_drill_{uuid.uuid4().hex[:8]}")
    prefix = f"r{uuid.uuid4().hex[:8]}."
    first = start_samsyn(stack, original_url, prefix=prefix)
    try:
        school, social = first.org("school", "1492"), first.org("social_services", "1492")
        health = first.org("student_health", "1492")
        auditor = first.org("oversight", scopes=["audit:read"])
        pupil = child(11)
        school.relate(pupil, "enrolled")
        health.relate(pupil, "enrolled")
        consent = school.consent(
            pupil,
            {
                "from_orgs": [school.id],
                "to_orgs": [health.id],
                "categories": ["attendance"],
                "purposes": ["early_support"],
            },
        )
        known = [child(10) for _ in range(BEFORE)]
        sent = [report(school, barn) for barn in known]
        for env in sent:
            school.publish(env, wait=False)

        during = [
            report(school, known[i % BEFORE] if children_during_backup == "known" else child(10))
            for i in range(DURING)
        ]
        publisher = threading.Thread(target=lambda: [school.publish(e, wait=False) for e in during])
        publisher.start()
        backup = tmp_path / "samsyn.dump"
        subprocess.run(
            [postgres_tool("pg_dump"), "-Fc", "-f", str(backup), libpq_url(original_url)],
            check=True,
        )
        publisher.join(timeout=120)
        sent += during
        ids = {str(e["id"]) for e in sent}
        eventually(
            lambda: ids <= {i["event_id"] for i in social.feed()}, "every report in the feed", 120
        )
        head = eventually(lambda: sealed(auditor, 1), "a sealed chain")
    finally:
        first.stop()

    restored_url = restore(stack, backup)
    # The backup was taken mid-stream: it lacks deliveries that the feed had before the stop.
    assert backed_up_deliveries(restored_url) < len(sent)
    second = start_samsyn(stack, restored_url, prefix=prefix)
    try:
        social, health, auditor, school = (on(second, o) for o in (social, health, auditor, school))
        # The read model takes what the backup missed from Kafka, once.
        delivered = eventually(lambda: deliveries(social, ids), "the restored feed", 120)
        assert max(delivered.values()) == 1, "a delivery came back twice"
        # The chain is whole again: the record the original ended with is there, with the same
        # seq and hash, so every record before it is the original's too.
        eventually(lambda: sealed(auditor, head["records"]), "the restored chain", 120)
        page = auditor.call(
            "GET",
            "/v1/audit/records",
            params={"cursor": encode_cursor(int(head["records"]) - 1), "limit": 1},
        ).json()
        assert [(r["seq"], r["hash"]) for r in page["items"]] == [(head["records"], head["head"])]
        # The registry came back: the consent and relationships still carry a new event.
        school.publish(
            school.envelope(
                pupil,
                "attendance.flagged",
                {"period_start": "2026-10-01", "period_end": "2026-10-31", "absence_percent": 22.0},
                purpose="early_support",
                basis="consent",
                consent=consent,
            )
        )
        assert health.wait_feed(lambda i: i["type"].endswith("attendance.flagged.v1"))
    finally:
        second.stop()


def test_a_key_shredded_after_the_backup_stays_shredded_after_the_restore(
    stack: dict[str, str], tmp_path: Path
) -> None:
    """A backup holds a child's key; the child is erased after it. Restored from that backup,
    Samsyn destroys the key again (its tombstone in keys.v1) before it shows anything: the
    child's report, still in the backup's feed, does not open (without the tombstone it would:
    the backup holds the live key). A child first seen after the backup, and one known before
    it, read as before."""
    original_url = new_postgres_database(stack, f"samsyn_drill_{uuid.uuid4().hex[:8]}")
    prefix = f"r{uuid.uuid4().hex[:8]}."
    # Without the follow-up: it would give the erased child a new key for its ledger (the
    # report reaches it after the erasure), and a new key opens nothing old either, which would
    # hide whether the tombstone did its work.
    workers = '["router", "materializer", "sealer"]'
    first = start_samsyn(stack, original_url, prefix=prefix, workers=workers)
    try:
        school, social = first.org("school", "1493"), first.org("social_services", "1493")
        erased, kept, later = child(12), child(12), child(12)
        before = {barn: report(school, barn) for barn in (erased, kept)}
        for env in before.values():
            school.publish(env)
        ids = {str(e["id"]) for e in before.values()}
        eventually(lambda: deliveries(social, ids), "the reports in the feed")
        backup = tmp_path / "samsyn.dump"
        subprocess.run(
            [postgres_tool("pg_dump"), "-Fc", "-f", str(backup), libpq_url(original_url)],
            check=True,
        )
        shred = first.call(
            "POST",
            f"/v1/admin/subjects/{erased}/shred",
            first.admin,
            json={"reason": "Ärende 2026/118: fel barn"},
        )
        assert shred.status_code == 200, shred.text
        assert shred.json()["keys_destroyed"] == 1
        after = report(school, later)
        school.publish(after)
        eventually(lambda: deliveries(social, {str(after["id"])}), "the later report")
    finally:
        first.stop()

    restored_url = restore(stack, backup)
    second = start_samsyn(stack, restored_url, prefix=prefix, workers=workers)
    try:
        social = on(second, social)
        wanted = {str(before[kept]["id"]), str(after["id"])}
        eventually(lambda: deliveries(social, wanted), "the kept and the later report", 120)
        shown = social.feed()
        assert {i["subject"] for i in shown} == {kept, later}
        assert str(before[erased]["id"]) not in {i["event_id"] for i in shown}
    finally:
        second.stop()
