"""How the long-running processes (API, workers) set Python's cyclic garbage collector.

Why: each full collection walks every object that survived start-up (modules, classes,
schemas, the ORM's mappings), and with the many short-lived objects the router and the read
side make per event those collections took about a fifth of the router's CPU. Frozen, the
objects of start-up are never walked again.

Young collections come every 10,000 net allocations of container objects instead of the
interpreter's 700. A router or read-side batch keeps thousands of objects alive until it is
committed; at 700 each batch set off young collections that moved them into the older
generations, whose collections then walked them again: 8-9 % of the router's and the read
side's CPU (docs/bench/journal.md, session 23), 3.4 and 2.0 % at 10,000, where a young collection
takes 1.6-3.4 ms. The older generations keep the interpreter's ratios, so full collections, rarer
now, are not what closes a worker session left behind: the supervisor asks for them while one
is (``broker/runtime/supervise.py``).
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_EVERY = 10_000


def tune_collector() -> None:
    """Call once the process has imported and built what it keeps for its whole life."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, oldest)
