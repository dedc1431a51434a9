"""``make bench-followup``: p95 of the console's log follow-up views over millions of audit
records on the local stack's PostgreSQL. Not part of ``make test``.

1. a fresh database, migrated to head;
2. ``--records`` audit records (default 5,000,000) over the last year, made by the database
   itself (``INSERT … SELECT … FROM generate_series``: no Kafka, no sealer, hashes not chained)
   — 40 % decisions, 48 % feed reads, 8 % child views, 2 % webhook pushes, 0.1 % emergency
   accesses, refusals and console actions — with 60 organisations, 60,000 children and 20,000
   relationships (a tenth ended);
3. the follow-up tables filled from those records by SQL that counts what the sealer's
   projection counts (broker/audit/followup/projection.py), most review items given a verdict,
   some samples drawn; ``followup_state`` set to the head, as after the sealer's catch-up;
4. each view timed ``--runs`` times through the functions the console's pages call, with
   varying organisations and periods; p50 and p95 per view printed.

``--keep`` leaves the database (its name is printed) for a second look with ``--reuse NAME``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.followup import flags, queue, report, samples
from broker.audit.followup.overview import chain_state, overview
from broker.infra.db import make_engine, make_sessionmaker
from broker.infra.migrate import upgrade
from tests.kit import drop_postgres_database, new_postgres_database, stack_env

ORGS = 60  # org-0 … org-59 in the SQL below
TARGET_S = 1.0

SEED_SQL = [
    # Organisations and relationships (flags join reads to ended relationships).
    """INSERT INTO organisations (id, name, kind, municipality, created_at)
        SELECT 'org-' || i, 'Org ' || i, 'school', '1480', now()
        FROM generate_series(0, 59) i""",
    """INSERT INTO organisations (id, name, kind, municipality, created_at)
        VALUES ('samsyn-tillsyn', 'Tillsyn', 'oversight', NULL, now())""",
    """INSERT INTO relationships (id, subject_pseudonym, org_id, role, declared_by_org,
            valid_from, valid_until, ended_at, created_at)
        SELECT md5('rel' || i)::uuid::text, 'k:' || (i * 13 % 60000), 'org-' || (i % 60),
            'enrolled', 'org-' || (i % 60), now() - interval '400 days', NULL,
            CASE WHEN i % 10 = 0 THEN now() - (i % 300) * interval '1 day' END, now()
        FROM generate_series(1, 20000) i""",
    # The records: kind by g % 1000, spread evenly over the last 365 days in seq order.
    """INSERT INTO audit_records (seq, record_id, time, actor_org, actor_client, action,
            subject_pseudonym, event_id, recipient_org, outcome, legal_ground, purpose,
            categories_shared, categories_withheld, reasons, policy_revision, decision_id,
            prev_hash, hash)
        SELECT g, md5(g::text)::uuid::text,
            now() - interval '365 days' + (g - 1) * (interval '365 days' / :n),
            CASE WHEN r < 400 THEN 'org-' || (g % 40)
                 WHEN r < 990 THEN 'org-' || (g % 60)
                 ELSE 'samsyn-tillsyn' END,
            'client-' || (g % 60),
            CASE WHEN r < 400 THEN 'decision'
                 WHEN r < 880 THEN 'feed.read'
                 WHEN r < 960 THEN 'child.read'
                 WHEN r < 980 THEN 'webhook.push'
                 WHEN r < 990 THEN 'emergency_access'
                 ELSE 'admin.audit.search' END,
            'k:' || (g * 7919 % 60000),
            md5('event' || (g / 3))::uuid::text,
            CASE WHEN r < 400 THEN 'org-' || ((g / 7) % 60) END,
            CASE WHEN r < 400 THEN CASE WHEN g % 3 = 0 THEN 'deny' ELSE 'allow' END
                 WHEN r BETWEEN 981 AND 989 THEN 'refused'
                 ELSE 'ok' END,
            CASE WHEN r < 400 AND g % 3 <> 0
                   THEN (ARRAY['consent', 'care_support_u18', 'mandatory_report',
                               'social_services_inquiry'])[g % 4 + 1]
                 WHEN r BETWEEN 980 AND 989 THEN 'emergency' END,
            'early_support',
            '["attendance"]'::json, '[]'::json,
            CASE WHEN r < 400 AND g % 3 <> 0 AND g % 500 = 1
                   THEN '["allowed", "obligation:review"]'::json
                 WHEN r = 980 THEN '["obligation:review", "reason:akut"]'::json
                 ELSE '["allowed"]'::json END,
            'rev-1', md5('d' || g),
            md5(g::text) || md5((g + 1)::text), md5((g + 1)::text) || md5(g::text)
        FROM (SELECT g::bigint AS g, g % 1000 AS r FROM generate_series(1, :n) g) s""",
    """INSERT INTO audit_checkpoints (seq, head_hash, signed_at, key_id, signature)
        SELECT seq, hash, time, 'bench', 'not-signed' FROM audit_records
        WHERE seq % 100 = 0""",
    # The follow-up tables, as the sealer's projection would have left them.
    """INSERT INTO audit_daily (day, org, side, action, outcome, legal_ground, off_hours, count)
        SELECT (time AT TIME ZONE 'UTC')::date, coalesce(actor_org, ''), 'actor', action,
            outcome, CASE WHEN action = 'decision' THEN coalesce(legal_ground, '') ELSE '' END,
            action IN ('feed.read', 'child.read', 'webhook.push') AND (
              extract(isodow FROM time AT TIME ZONE 'Europe/Stockholm') >= 6
              OR extract(hour FROM time AT TIME ZONE 'Europe/Stockholm') NOT BETWEEN 7 AND 17),
            count(*)
        FROM audit_records GROUP BY 1, 2, 3, 4, 5, 6, 7""",
    """INSERT INTO audit_daily (day, org, side, action, outcome, legal_ground, off_hours, count)
        SELECT (time AT TIME ZONE 'UTC')::date, recipient_org, 'recipient', action, outcome,
            coalesce(legal_ground, ''), false, count(*)
        FROM audit_records WHERE action = 'decision' AND recipient_org IS NOT NULL
        GROUP BY 1, 2, 3, 4, 5, 6, 7""",
    """INSERT INTO audit_daily_children (day, org, subject_pseudonym)
        SELECT DISTINCT (time AT TIME ZONE 'UTC')::date, actor_org, subject_pseudonym
        FROM audit_records WHERE action IN ('feed.read', 'child.read', 'webhook.push')""",
    """INSERT INTO audit_daily_readers (day, org, children)
        SELECT day, org, count(*) FROM audit_daily_children GROUP BY day, org""",
    """INSERT INTO review_items (seq, time, action, actor_org, recipient_org, subject_pseudonym,
            event_id, legal_ground, verdict, note, reviewed_by, reviewed_at, verdict_seq)
        SELECT seq, time, action, actor_org, recipient_org, subject_pseudonym, event_id,
            legal_ground,
            CASE WHEN seq % 10 <> 0 THEN 'justified' END,
            CASE WHEN seq % 10 <> 0 THEN 'Befogad.' END,
            CASE WHEN seq % 10 <> 0 THEN 'local:granskare' END,
            CASE WHEN seq % 10 <> 0 THEN time + interval '3 days' END,
            NULL
        FROM audit_records
        WHERE (action = 'emergency_access' AND outcome = 'ok')
           OR (action = 'decision' AND outcome = 'allow'
               AND reasons::jsonb ? 'obligation:review')""",
    """INSERT INTO review_samples (id, seq, org, month, seed, population, read_seqs, drawn_by,
            drawn_at, verdict, note, reviewed_by, reviewed_at, verdict_seq)
        SELECT md5('sample' || i)::uuid::text, -i, 'org-' || (i % 60),
            to_char(now() - (i % 12) * interval '1 month', 'YYYY-MM'), 'seed' || i, 3000,
            '["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]'::json, 'local:granskare',
            now() - (i % 12) * interval '1 month',
            'justified', 'Inga avvikelser.', 'local:granskare', now(), NULL
        FROM generate_series(1, 720) i""",
    "INSERT INTO followup_state (id, projected_seq) VALUES (1, :n)",
    "ANALYZE",
]


def _bound(sql: str, n: int) -> str:
    return sql.replace(":n", str(n))


async def _timed(conn: asyncpg.Connection, sql: str) -> None:
    started = time.perf_counter()
    await conn.execute(sql)
    first = " ".join(sql.split()[:3])[:40]
    print(f"  {first:<40} {time.perf_counter() - started:7.1f} s", flush=True)


async def seed(url: str, n: int) -> None:
    """Secondary indexes of ``audit_records`` are dropped for the bulk insert and made again
    after it (the migrations' definitions, as PostgreSQL reports them): several times faster."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_records' "
            "AND indexname LIKE 'ix_%'"
        )
        for ix in indexes:
            await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
        for sql in SEED_SQL:
            await _timed(conn, _bound(sql, n))
            if sql.lstrip().startswith("INSERT INTO audit_records"):
                for ix in indexes:
                    await _timed(conn, ix["indexdef"])
        total = await conn.fetchval("SELECT sum(count) FROM audit_daily WHERE side = 'actor'")
        assert total == n, f"the daily summary counts {total} records of {n}"
    finally:
        await conn.close()


View = Callable[[AsyncSession, int], Awaitable[Any]]


def views(
    sessions: async_sessionmaker[AsyncSession], today: date, overdue_days: int
) -> dict[str, View]:
    """What each follow-up page asks of the database; ``i`` varies organisation and period."""
    now = datetime.now(UTC)

    def org(i: int) -> str:
        return f"org-{i * 7 % ORGS}"

    def last_30(i: int) -> tuple[date, date]:
        last = today - timedelta(days=i * 11 % 300)
        return last - timedelta(days=29), last

    async def overview_all(db: AsyncSession, i: int) -> Any:
        first, last = last_30(i)
        await overview(db, first, last, "", now=now, overdue_days=overdue_days)
        return await chain_state(db, {})

    async def overview_org(db: AsyncSession, i: int) -> Any:
        first, last = last_30(i)
        return await overview(db, first, last, org(i), now=now, overdue_days=overdue_days)

    async def review_open(db: AsyncSession, i: int) -> Any:
        return await queue.items(db, open_only=True, org=org(i) if i % 2 else "")

    async def review_all(db: AsyncSession, i: int) -> Any:
        return await queue.items(db, open_only=False, org=org(i) if i % 2 else "")

    async def sample_draw(db: AsyncSession, i: int) -> Any:
        month = (today - timedelta(days=30 * (i % 12))).strftime("%Y-%m")
        reads = await samples.population(db, org(i), month)
        return samples.draw(reads, f"seed-{i}", 20)

    async def samples_list(db: AsyncSession, i: int) -> Any:
        return await samples.recent(db, org(i) if i % 2 else "")

    async def flags_30(db: AsyncSession, i: int) -> Any:
        first, last = last_30(i)
        return await flags.flags(db, first, last, org(i) if i % 2 else "")

    async def report_30(db: AsyncSession, i: int) -> Any:
        first, last = last_30(i)
        return await report.gather(
            sessions, first, last, "", now=now, overdue_days=overdue_days, public_keys={}
        )

    return {
        "overview (all organisations)": overview_all,
        "overview (one organisation)": overview_org,
        "review queue (open)": review_open,
        "review queue (all)": review_all,
        "sample: draw (population + draw)": sample_draw,
        "samples: list": samples_list,
        "flags (30 days)": flags_30,
        "report (30 days)": report_30,
    }


async def measure(
    sessions: async_sessionmaker[AsyncSession], runs: int
) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for name, view in views(sessions, datetime.now(UTC).date(), overdue_days=14).items():
        times: list[float] = []
        for i in range(runs + 1):
            async with sessions() as db:
                started = time.perf_counter()
                await view(db, i)
                elapsed = time.perf_counter() - started
            if i:  # the first run warms the cache and is left out
                times.append(elapsed)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        out[name] = (statistics.median(times), p95)
        print(f"  {name:<36} p50 {out[name][0] * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--records", type=int, default=5_000_000)
    p.add_argument("--runs", type=int, default=40)
    p.add_argument("--keep", action="store_true", help="leave the database")
    p.add_argument("--reuse", metavar="NAME", help="time an existing bench database")
    args = p.parse_args(argv)
    stack = stack_env()
    base = stack["SAMSYN_TEST_POSTGRES_DSN"]
    name = args.reuse or f"samsyn_followup_{uuid.uuid4().hex[:8]}"
    url = base.rsplit("/", 1)[0] + "/" + name

    async def run() -> dict[str, tuple[float, float]]:
        engine = make_engine(url)
        try:
            return await measure(make_sessionmaker(engine), args.runs)
        finally:
            await engine.dispose()

    try:
        if not args.reuse:
            new_postgres_database(stack, name)
            upgrade(url)
            print(f"seeding {args.records:,} audit records into {name}", flush=True)
            started = time.perf_counter()
            asyncio.run(seed(url, args.records))
            print(f"  seeded in {time.perf_counter() - started:.0f} s", flush=True)
        print(f"timing each view {args.runs} times (after one warm-up run)", flush=True)
        results = asyncio.run(run())
    finally:
        if not args.keep:
            drop_postgres_database(stack, name)
    worst = max(p95 for _, p95 in results.values())
    verdict = "meets" if worst < TARGET_S else "MISSES"
    print(
        f"follow-up views over {args.records:,} records: worst p95 {worst * 1000:.0f} ms "
        f"({verdict} the {TARGET_S * 1000:.0f} ms target)"
    )
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
