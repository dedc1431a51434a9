"""``samsyn``: serve the API (with its workers), migrate, provision clients, verify an export."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import get_args

from broker.config import WorkerName


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from broker.app import create_app
    from broker.config import get_settings
    from broker.infra.migrate import upgrade
    from broker.runtime.heap import tune_collector

    settings = get_settings()
    upgrade(settings.database_url)
    app = create_app(settings)
    tune_collector()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    import uvloop

    from broker.config import Settings
    from broker.runtime.heap import tune_collector
    from broker.runtime.workers import run_workers

    tune_collector()
    # The same event loop as the API's (uvicorn picks uvloop): the router spends a third of its
    # CPU in the loop itself (Kafka fetches, OPA and database round trips), uvloop halves that.
    uvloop.run(run_workers(Settings(workers=args.names)))
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from broker.config import get_settings
    from broker.infra.migrate import upgrade

    upgrade(get_settings().database_url)
    return 0


def _topics(args: argparse.Namespace) -> int:
    from broker.config import get_settings
    from broker.infra.topics import ensure_topics

    settings = get_settings()
    replication = args.replication or settings.kafka_replication
    created = asyncio.run(ensure_topics(settings, replication=replication))
    print(json.dumps({"created": created}))
    return 0


def _admin_client(args: argparse.Namespace) -> int:
    """Create or reset an admin client directly in the database (a fresh deployment)."""
    from broker.config import get_settings
    from broker.infra.db import make_engine, make_sessionmaker
    from broker.infra.migrate import upgrade
    from broker.registry.bootstrap import upsert_client
    from broker.registry.secrets import new_secret

    settings = get_settings()
    upgrade(settings.database_url)
    secret = new_secret()

    async def run() -> None:
        engine = make_engine(settings.database_url, settings.database_pool_size)
        try:
            await upsert_client(
                make_sessionmaker(engine),
                client_id=args.client_id,
                secret=secret,
                scopes=args.scope or ["admin"],
            )
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
    return 0


def _rotate_kek(_: argparse.Namespace) -> int:
    """Re-wrap every child's data key under the current KEK (SAMSYN_KEK_CURRENT_KID)."""
    from broker.config import get_settings
    from broker.infra.db import make_engine, make_sessionmaker
    from broker.infra.kafka_writer import KafkaWriter
    from broker.infra.keys import load_keys, subject_keys_of
    from broker.infra.migrate import upgrade
    from broker.privacy.keylog import KafkaKeyLog

    settings = get_settings()
    upgrade(settings.database_url)

    async def run() -> int:
        engine = make_engine(settings.database_url)
        kafka_writer = KafkaWriter(settings)
        try:
            sessions = make_sessionmaker(engine)
            keys = subject_keys_of(
                settings, sessions, await load_keys(settings, sessions), KafkaKeyLog(kafka_writer)
            )
            # Each re-wrapped key goes to the key log too (the running processes imported it).
            kafka_writer.start()
            await kafka_writer.connected(timeout_s=30)
            keys.imported()
            return await keys.rewrap()
        finally:
            await kafka_writer.stop()
            await engine.dispose()

    rewrapped = asyncio.run(run())
    print(json.dumps({"rewrapped": rewrapped}))
    return 0


def _gallring(args: argparse.Namespace) -> int:
    """One gallring run now (or, with --dry-run, what it would remove), as JSON."""
    from functools import partial

    from broker.config import get_settings
    from broker.infra.db import make_engine, make_sessionmaker
    from broker.infra.kafka import AUDIT
    from broker.infra.kafka_writer import KafkaWriter
    from broker.infra.keys import load_keys, subject_keys_of
    from broker.infra.migrate import upgrade
    from broker.privacy.gallring import run_gallring
    from broker.privacy.keylog import KafkaKeyLog

    settings = get_settings()
    upgrade(settings.database_url)

    async def run() -> dict[str, object]:
        engine = make_engine(settings.database_url)
        kafka_writer = KafkaWriter(settings)
        try:
            sessions = make_sessionmaker(engine)
            subject_keys = subject_keys_of(
                settings, sessions, await load_keys(settings, sessions), KafkaKeyLog(kafka_writer)
            )
            # Like rotate-kek, a one-off beside the running processes, which imported the log.
            subject_keys.imported()
            if not args.dry_run:
                kafka_writer.start()
                await kafka_writer.connected(timeout_s=30)
            done = await run_gallring(
                sessions,
                subject_keys,
                settings,
                partial(kafka_writer.send, AUDIT),
                dry_run=args.dry_run,
            )
            return {"dry_run": args.dry_run, **done.counts(), "pseudonyms": done.keys_destroyed}
        finally:
            await kafka_writer.stop()
            await engine.dispose()

    print(json.dumps(asyncio.run(run())))
    return 0


def _auditor(args: argparse.Namespace) -> int:
    """Create (or reset the password of) a local auditor of the console, or disable one."""
    from broker.audit.console.service import disable_auditor, upsert_auditor
    from broker.config import get_settings
    from broker.infra.db import make_engine, make_sessionmaker
    from broker.infra.migrate import upgrade
    from broker.registry.secrets import new_secret
    from broker.web.errors import Problem

    settings = get_settings()
    upgrade(settings.database_url)
    password = new_secret()

    async def run() -> None:
        engine = make_engine(settings.database_url, settings.database_pool_size)
        sessions = make_sessionmaker(engine)
        try:
            if args.action == "create":
                await upsert_auditor(sessions, name=args.name, password=password, org_id=args.org)
            else:
                await disable_auditor(sessions, name=args.name)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except Problem as err:
        print(err.detail, file=sys.stderr)
        return 2
    if args.action == "create":
        print(json.dumps({"auditor": args.name, "org": args.org, "password": password}))
    return 0


def _verify_export(args: argparse.Namespace) -> int:
    """Verify an exported chain offline against the published checkpoint public key. The file
    is parsed as a stream, twice (checkpoints, then records), so memory stays flat however
    long the chain."""
    import ijson

    from broker.audit.chain import ANY_KEY, verify
    from broker.infra.keys import public_key

    try:
        if args.public_keys:
            keys = {
                kid: public_key(p)
                for kid, p in json.loads(Path(args.public_keys).read_text()).items()
            }
        else:
            keys = {ANY_KEY: public_key(Path(args.public_key).read_text())}
    except ValueError as err:
        print(f"cannot use the public key: {err}", file=sys.stderr)
        return 2
    with Path(args.export).open("rb") as first, Path(args.export).open("rb") as second:
        checkpoints = list(ijson.items(first, "checkpoints.item", use_float=True))
        records = ijson.items(second, "records.item", use_float=True)
        verdict = verify(records, checkpoints, keys)
    print(json.dumps(verdict.as_dict()))
    return 0 if verdict.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="samsyn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="migrate, then serve the API and its workers (not the read side)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)
    worker = sub.add_parser("worker", help="run background workers without the HTTP API")
    worker.add_argument("names", nargs="+", choices=get_args(WorkerName))
    worker.set_defaults(func=_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    topics = sub.add_parser("topics", help="create the Kafka topics that are missing")
    topics.add_argument(
        "--replication", type=int, help="replicas per topic (default: SAMSYN_KAFKA_REPLICATION)"
    )
    topics.set_defaults(func=_topics)
    admin = sub.add_parser("admin-client", help="create or reset a client of the operator")
    admin.add_argument("client_id")
    admin.add_argument("--scope", action="append", help="repeat; default: admin")
    admin.set_defaults(func=_admin_client)
    sub.add_parser(
        "rotate-kek", help="re-wrap every child's data key under the current KEK"
    ).set_defaults(func=_rotate_kek)
    gallring = sub.add_parser("gallring", help="remove what has outlived its retention now")
    gallring.add_argument("--dry-run", action="store_true", help="print it, change nothing")
    gallring.set_defaults(func=_gallring)
    auditor = sub.add_parser("auditor", help="create or disable a local auditor of /audit/")
    auditor.add_argument("action", choices=["create", "disable"])
    auditor.add_argument("name")
    auditor.add_argument("--org", default="samsyn-tillsyn", help="kind oversight; made if missing")
    auditor.set_defaults(func=_auditor)
    audit = sub.add_parser("audit-verify", help="verify an exported audit chain offline")
    audit.add_argument("--export", required=True, help="JSON from GET /v1/audit/export")
    keys = audit.add_mutually_exclusive_group(required=True)
    keys.add_argument("--public-key", help="PEM from GET /v1/audit/public-key (one key for all)")
    keys.add_argument(
        "--public-keys", help="JSON from GET /v1/audit/public-keys (key id -> PEM, after rotations)"
    )
    audit.set_defaults(func=_verify_export)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
