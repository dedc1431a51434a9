"""``name_id`` is ``str(uuid.uuid5(…))``: the ids of decisions and deliveries made before it
came are the ids made after (a re-decided event must be recognised downstream)."""

from __future__ import annotations

import random
import uuid

from broker.audit.records import NAMESPACE
from broker.name_ids import name_id
from broker.router.outputs import DELIVERY_NAMESPACE


def test_the_ids_are_the_standard_librarys() -> None:
    rng = random.Random(5)
    names = ["", "-", "decision/skola-1/e-1/-", "ö/å/ä", "\U0001f600" * 40, "x" * 5000]
    names += [
        "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(60)))
        for _ in range(2000)
    ]
    for namespace in (NAMESPACE, DELIVERY_NAMESPACE, uuid.NAMESPACE_URL):
        for name in names:
            assert name_id(namespace, name) == str(uuid.uuid5(namespace, name))
