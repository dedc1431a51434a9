"""Audit chain verification and export at scale, in constant memory: ``make bench-audit``.

Seeds N sealed records (a valid chain with a signed checkpoint every 10,000 records) into a new
PostgreSQL database of the local stack with COPY, then measures, each in a process of its own
so that its peak RSS is its own:

- ``verify``: ``broker.audit.service.verify_chain`` over the database (what
  ``GET /v1/audit/verify`` does), records/s and peak RSS;
- ``export``: ``broker.audit.service.export`` streamed to a file (``GET /v1/audit/export``);
- ``offline``: ``samsyn audit-verify`` of that file (a stream parser, two passes).

It prints one line per step and, last,
``audit: N records, verify R records/s, peak RSS M MB; export E MB in T s, peak RSS M MB;
offline R records/s, peak RSS M MB``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.chain import GENESIS, record_hash, sign_checkpoint
from broker.audit.service import RECORD_FIELDS
from tests.kit import REPO, new_postgres_database, stack_env

CHECKPOINT_EVERY = 10_000
KEY_ID = "bench"
ORGS = [f"org-{i:03d}" for i in range(60)]
ACTIONS = ["decision", "feed.read", "child.read"]


def records(n: int) -> Iterator[tuple[dict[str, Any], str | None]]:
    """A valid chain of ``n`` fictional records; with each, the head hash when a checkpoint
    falls on it."""
    prev, start = GENESIS, datetime(2026, 1, 1, tzinfo=UTC)
    for seq in range(1, n + 1):
        action = ACTIONS[seq % 3]
        rec: dict[str, Any] = {
            "seq": seq,
            "record_id": str(uuid.UUID(int=seq)),
            "time": (start + timedelta(seconds=seq * 3)).isoformat(),
            "actor_org": ORGS[seq % 60],
            "actor_client": None,
            "action": action,
            "subject_pseudonym": f"p1:{seq % 50_000:032x}",
            "event_id": str(uuid.UUID(int=seq // 4)),
            "recipient_org": ORGS[(seq * 7) % 60] if action == "decision" else None,
            "outcome": ("allow" if seq % 4 else "deny") if action == "decision" else "ok",
            "legal_ground": "consent" if action == "decision" else None,
            "purpose": "early_support",
            "categories_shared": ["attendance"] if action == "decision" else [],
            "categories_withheld": [],
            "reasons": ["allowed"] if action == "decision" else [],
            "policy_revision": "bench",
            "decision_id": None,
            "statute": None,
            "review": None,
        }
        rec["prev_hash"] = prev
        rec["hash"] = prev = record_hash(prev, rec)
        yield rec, prev if seq % CHECKPOINT_EVERY == 0 else None


async def seed(url: str, n: int, key: Ed25519PrivateKey) -> None:
    import asyncpg

    from broker.infra.migrate import upgrade_async

    await upgrade_async(url)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        columns = list(RECORD_FIELDS)
        rows, checkpoints = [], []
        now = datetime.now(UTC)
        for rec, head in records(n):
            row = dict(rec)
            row["time"] = datetime.fromisoformat(rec["time"])
            for f in ("categories_shared", "categories_withheld", "reasons"):
                row[f] = json.dumps(rec[f])
            rows.append(tuple(row[c] for c in columns))
            if head is not None:
                signature = sign_checkpoint(key, rec["seq"], head)
                checkpoints.append((rec["seq"], head, now, KEY_ID, signature))
            if len(rows) == 50_000:
                await conn.copy_records_to_table("audit_records", records=rows, columns=columns)
                rows = []
        if rows:
            await conn.copy_records_to_table("audit_records", records=rows, columns=columns)
        await conn.copy_records_to_table(
            "audit_checkpoints",
            records=checkpoints,
            columns=["seq", "head_hash", "signed_at", "key_id", "signature"],
        )
    finally:
        await conn.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def verify_db(url: str, public_pem: str) -> dict[str, Any]:
    from broker.audit.service import verify_chain
    from broker.infra.db import make_engine, make_sessionmaker
    from broker.infra.keys import public_key

    engine = make_engine(url, 2)
    try:
        async with make_sessionmaker(engine)() as session:
            started = time.perf_counter()
            verdict = await verify_chain(session, {KEY_ID: public_key(public_pem)})
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {"verdict": verdict.as_dict(), "seconds": seconds, "rss_mb": peak_rss_mb()}


async def export_db(url: str, out: Path) -> dict[str, Any]:
    from broker.audit.service import export
    from broker.infra.db import make_engine, make_sessionmaker

    engine = make_engine(url, 2)
    started = time.perf_counter()
    try:
        with out.open("wb") as f:
            async for chunk in export(make_sessionmaker(engine)):
                f.write(chunk)
    finally:
        await engine.dispose()
    return {"seconds": time.perf_counter() - started, "rss_mb": peak_rss_mb()}


def child(*args: str) -> dict[str, Any]:
    """Run one step in a fresh process; its JSON answer (with its own peak RSS)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.audit_chain", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    answer: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.audit_chain", description=__doc__)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--step", choices=["verify", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "verify":
        print(json.dumps(asyncio.run(verify_db(args.url, Path(args.key).read_text()))))
        return 0
    if args.step == "export":
        print(json.dumps(asyncio.run(export_db(args.url, Path(args.out)))))
        return 0

    work = REPO / "var" / "bench" / "audit"
    work.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (work / "public-key.pem").write_bytes(pem)
    (work / "public-keys.json").write_text(json.dumps({KEY_ID: pem.decode()}))
    url = new_postgres_database(stack_env(), f"samsyn_bench_audit_{uuid.uuid4().hex[:8]}")
    n = args.records
    started = time.perf_counter()
    asyncio.run(seed(url, n, key))
    print(f"seeded {n:,} records in {time.perf_counter() - started:.0f} s", flush=True)

    verified = child("--step", "verify", "--url", url, "--key", str(work / "public-key.pem"))
    assert verified["verdict"]["ok"], verified
    assert verified["verdict"]["records"] == n, verified
    v_rate = n / verified["seconds"]
    print(f"verify (database): {v_rate:,.0f} records/s, peak RSS {verified['rss_mb']:.0f} MB")

    export_file = work / "export.json"
    exported = child("--step", "export", "--url", url, "--out", str(export_file))
    size_mb = export_file.stat().st_size / 1e6
    print(
        f"export: {size_mb:,.0f} MB in {exported['seconds']:.0f} s, "
        f"peak RSS {exported['rss_mb']:.0f} MB"
    )

    started = time.perf_counter()
    offline = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, sys; from broker.cli import main; code = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)",
            "audit-verify",
            "--export",
            str(export_file),
            "--public-keys",
            str(work / "public-keys.json"),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    o_seconds = time.perf_counter() - started
    verdict, o_rss = json.loads(offline[0]), int(offline[1]) / 1024
    assert verdict["ok"], verdict
    assert verdict["records"] == n, verdict
    o_rate = n / o_seconds
    print(f"offline (samsyn audit-verify): {o_rate:,.0f} records/s, peak RSS {o_rss:.0f} MB")
    export_file.unlink()
    print(
        f"audit: {n} records, verify {v_rate:.0f} records/s, peak RSS "
        f"{verified['rss_mb']:.0f} MB; export {size_mb:.0f} MB in {exported['seconds']:.0f} s, "
        f"peak RSS {exported['rss_mb']:.0f} MB; offline {o_rate:.0f} records/s, "
        f"peak RSS {o_rss:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
