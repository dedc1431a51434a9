"""How the long-running processes (API, workers) set Python's cyclic garbage collector.

Why: each full collection walks every object that survived start-up (modules, classes,
schemas, the ORM's mappings), and with the many short-lived objects the router and the read
side make per event those collections took about a fifth of the router's CPU. Frozen, the
objects of start-up are never walked again.

The collector's thresholds stay the interpreter's: an abandoned session's clients (a worker
session left behind, its Kafka client or its database connection with a transaction open) are
closed when a full collection finds them (``broker/runtime/supervise.py``). With young
collections every 20,000 allocations instead of 700, a left-behind session held SQLite's write
lock for minutes after a Kafka restart (``test_kafka_restart``); frozen alone, the router's
CPU was the same (README, Benchmark, session 8).
"""

from __future__ import annotations

import gc


def tune_collector() -> None:
    """Call once the process has imported and built what it keeps for its whole life."""
    gc.collect()
    gc.freeze()
