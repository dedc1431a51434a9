"""Admission verdicts remembered by their facts: for ttl_s at most, in a bounded memory, the
facts compared whatever the order of their keys."""

from __future__ import annotations

from broker.policy.client import Admission
from broker.policy.memo import AdmissionMemo

ADMIT = Admission(admit=True, reasons=[])
REFUSE = Admission(admit=False, reasons=["age_limit_exceeded"])


def test_a_verdict_is_remembered_for_its_facts_until_it_is_too_old() -> None:
    now = [0.0]
    memo = AdmissionMemo(2.0, clock=lambda: now[0])
    key = memo.key({"type": "concern.raised", "age": 7, "source": {"kind": "school", "org": "s"}})
    memo.put(key, REFUSE)
    same = memo.key({"source": {"org": "s", "kind": "school"}, "age": 7, "type": "concern.raised"})
    assert memo.get(same) == REFUSE
    assert memo.get(memo.key({"type": "concern.raised", "age": 8})) is None
    now[0] = 1.99
    assert memo.get(key) == REFUSE
    now[0] = 2.0
    assert memo.get(key) is None


def test_the_memory_is_bounded_and_zero_remembers_nothing() -> None:
    memo = AdmissionMemo(60.0, size=2)
    keys = [memo.key({"age": age}) for age in range(3)]
    for key in keys:
        memo.put(key, ADMIT)
    assert [memo.get(k) for k in keys] == [None, ADMIT, ADMIT]
    off = AdmissionMemo(0.0)
    off.put(keys[0], ADMIT)
    assert off.get(keys[0]) is None
