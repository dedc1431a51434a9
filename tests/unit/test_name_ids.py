"""The ids of decisions, deliveries and other audit records: ``name_id`` is uuid5 with a time in
its first 48 bits and version 8, made the same way from the same name and time (a re-decided
event must be recognised downstream); ``time_id`` is a UUIDv7; both sort by their time."""

from __future__ import annotations

import random
import time
import uuid

from broker.audit.records import NAMESPACE
from broker.name_ids import Namespace, event_millis, name_id, time_id
from broker.router.outputs import DELIVERY_NAMESPACE

MS_48 = (1 << 48) - 1


def reference(namespace: uuid.UUID, name: str, ms: int) -> str:
    """From the standard library's uuid5: its first 48 bits replaced by ``ms``, version 8."""
    u5 = uuid.uuid5(namespace, name).int
    u = uuid.UUID(int=(ms << 80) | (0x8 << 76) | (u5 & ((1 << 76) - 1)))
    assert (u.version, u.variant) == (8, uuid.RFC_4122)
    return str(u)


def test_name_ids_are_uuid5_with_the_time_in_front() -> None:
    rng = random.Random(5)
    names = ["", "-", "decision/skola-1/e-1/-", "ö/å/ä", "\U0001f600" * 40, "x" * 5000]
    names += [
        "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(60)))
        for _ in range(2000)
    ]
    times = [0, 1, 1_796_119_200_000, MS_48] + [rng.randrange(MS_48) for _ in range(50)]
    for namespace in (NAMESPACE, DELIVERY_NAMESPACE, Namespace(uuid.NAMESPACE_URL)):
        for i, name in enumerate(names):
            ms = times[i % len(times)]
            assert name_id(namespace, name, ms) == reference(namespace.uuid, name, ms)


def test_name_ids_differ_by_name_and_sort_by_time() -> None:
    ids = [name_id(NAMESPACE, f"decision/skola/e-{i}/-", 1_796_119_200_000 + i) for i in range(500)]
    assert len(set(ids)) == 500
    assert ids == sorted(ids)
    same_ms = {name_id(NAMESPACE, f"e-{i}", 1_796_119_200_000) for i in range(500)}
    assert len(same_ms) == 500


def test_time_ids_are_uuid7_in_order() -> None:
    before = time.time_ns() // 1_000_000
    ids = [time_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 2000
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text
        assert (u.version, u.variant) == (7, uuid.RFC_4122)
        assert before <= u.int >> 80 <= after
    # Ordered by their milliseconds (random within one).
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)


def test_an_events_time_in_milliseconds() -> None:
    assert event_millis("2026-12-01T10:00:00Z") == 1_796_119_200_000
    assert event_millis("2026-12-01t11:00:00.123456789+01:00") == 1_796_119_200_123
    assert event_millis("2026-12-01t10:00:00.5z") == 1_796_119_200_500
    # Without a time, or before 1970 (the pattern allows 1900): the first 48 bits are zero.
    assert event_millis(None) == event_millis("") == event_millis("1969-12-31T23:59:59Z") == 0
