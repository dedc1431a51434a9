"""Admission verdicts remembered by the facts they were given, for a few seconds.

``samsyn.admission`` answers from a handful of facts (type, source, purpose, ground, the child's
age, which municipalities have social services), and the same facts come back with nearly every
publish. Most of an admission query's cost is OPA's fixed cost per query (the policy data's
checks run with every query), so a publish of one event paid about 4 ms of OPA CPU for an answer
it had already had. Remembered, the answer is the policy's answer to exactly these facts.

Why a bounded age is enough: admission only spares the publisher an event that can never be
routed. The router decides every event and every recipient again, with the policy loaded at that
moment and never from memory, and nothing is shared without its allow. A policy change reaches
admission at most ``ttl_s`` later (bundles themselves arrive by polling, seconds apart). Faults
(no verdict) are never remembered.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

from broker.policy.client import Admission

MEMO_SIZE = 4096


class AdmissionMemo:
    def __init__(
        self, ttl_s: float, size: int = MEMO_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_s
        self._size = size
        self._clock = clock
        self._verdicts: OrderedDict[bytes, tuple[Admission, float]] = OrderedDict()

    @staticmethod
    def key(facts: dict[str, Any]) -> bytes:
        return msgspec.json.encode(facts, order="sorted")

    def get(self, key: bytes) -> Admission | None:
        found = self._verdicts.get(key)
        if found is None:
            return None
        if self._clock() - found[1] >= self._ttl:
            del self._verdicts[key]
            return None
        self._verdicts.move_to_end(key)
        return found[0]

    def put(self, key: bytes, verdict: Admission) -> None:
        if self._ttl <= 0:
            return
        self._verdicts[key] = (verdict, self._clock())
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > self._size:
            self._verdicts.popitem(last=False)
