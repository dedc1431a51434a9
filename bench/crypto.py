"""Microseconds per sealing operation, as ingest, the router and the readers do them.

``python -m bench.crypto``: a typical event's personal part (a concern with a free-text
description) sealed and opened under a cached child key, and a cache hit of the key ring.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.privacy.aead import new_data_key
from broker.privacy.kek import LocalKeks
from broker.privacy.keyring import SubjectKeys
from broker.privacy.payloads import Personal, event_ad, open_personal, seal_personal
from tests.kit.keylog import key_ring

PERSONAL = Personal(
    subject="201206159814",
    data={
        "areas": ["trygghet", "tillhorighet"],
        "level": 2,
        "raised_by_role": "teacher",
        "description": "Ensam på raster, ofta ledsen (fiktivt exempel). " * 3,
    },
)


def per_call_us(fn: Callable[[], object], n: int = 20_000) -> float:
    """CPU microseconds per call (process time: what the call costs, not how busy the machine
    is with others)."""
    fn()
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) / n * 1e6


def cached(keys: SubjectKeys, pseudonym: str) -> None:
    """One key-ring lookup that the cache answers (no await suspends: driven by hand)."""
    lookup = keys.for_reading([pseudonym])
    try:
        lookup.send(None)
    except StopIteration:
        return
    raise AssertionError("the lookup went to the database")


def main() -> None:
    key = AESGCM(new_data_key())
    ad = event_ad("amal-skola", "1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    sealed = seal_personal(key, PERSONAL, ad)
    # No database: every lookup below is a cache hit.
    keys = key_ring(None, LocalKeks({"k": bytes(32)}, "k"))  # type: ignore[arg-type]
    pseudonym = "k1:" + "a" * 64
    keys._remember(pseudonym, key, keys._forgets)
    rows = {
        "seal (ingest; the router per delivery)": lambda: seal_personal(key, PERSONAL, ad),
        "open (the router per event; each read)": lambda: open_personal(key, sealed, ad),
        "key ring lookup, cache hit": lambda: cached(keys, pseudonym),
    }
    for what, fn in rows.items():
        print(f"{what:42} {per_call_us(fn):6.1f} µs")
    print(f"sealed part: {len(sealed)} characters for {len(str(PERSONAL.data))} of data")


if __name__ == "__main__":
    main()
