"""How the long-running processes (API, workers) set Python's cyclic garbage collector.

Why: the router and the read side allocate many short-lived objects per event (records, dicts,
rows), and at the interpreter's default (a young collection every 700 allocations, each older
one walking every object that survived start-up) the collector took about a fifth of the
router's CPU. Frozen, the objects of start-up (modules, classes, schemas) are never walked
again; a larger young generation collects as much garbage less often. Reference counting still
frees almost everything at once; only cycles wait for a collection.
"""

from __future__ import annotations

import gc

# Allocations before a young collection; young collections before a middle one; middle ones
# before a full one. The interpreter's defaults are (700, 10, 10).
THRESHOLDS = (20_000, 50, 100)


def tune_collector() -> None:
    """Call once the process has imported and built what it keeps for its whole life."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
