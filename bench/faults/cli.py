"""``python -m bench.faults``: run the suite, print the report and the verdict line."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

import bench.faults
from bench.faults.results import as_json
from bench.faults.suite import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench.faults", description=str(bench.faults.__doc__).split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=3000, help="events to publish (3000)")
    parser.add_argument("--senders", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of the API and router (3)")
    parser.add_argument(
        "--kafka-restarts", type=int, default=3, help="restarts of the Kafka node (3)"
    )
    parser.add_argument(
        "--kafka",
        choices=("cluster", "node"),
        default="cluster",
        help="three brokers, RF 3, min.insync.replicas 2 (cluster, the default) or one node",
    )
    parser.add_argument(
        "--broker-kills", type=int, default=2, help="SIGKILLs of a broker, cluster only (2)"
    )
    parser.add_argument(
        "--bound", type=float, default=60.0, help="fail when a recovery takes longer, s (60)"
    )
    parser.add_argument("--outage", type=float, default=8.0, help="OPA and database down, s (8)")
    parser.add_argument("--timeout", type=float, default=180.0, help="recovery timeout, s (180)")
    parser.add_argument("--pace", type=float, default=1.0, help="stretch the load over time (1)")
    parser.add_argument("--keep", action="store_true", help="keep the private stack and logs")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    # SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so the private stack stops.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    opts = Options(
        events=args.events,
        senders=args.senders,
        kills=args.kills,
        kafka_restarts=args.kafka_restarts,
        cluster=args.kafka == "cluster",
        broker_kills=args.broker_kills,
        bound_s=args.bound,
        outage_s=args.outage,
        recovery_timeout_s=args.timeout,
        pace=args.pace,
        keep=args.keep,
    )
    result = run(opts)
    if args.json:
        args.json.write_text(json.dumps(as_json(result), indent=2))
    bad = (
        result.slow
        or result.lost
        or result.duplicated
        or result.disclosed_while_opa_down
        or result.server_errors
        or result.unexpected
    )
    return 1 if bad else 0
