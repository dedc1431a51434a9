"""The collector settings of the long-running processes (``broker/runtime/heap.py``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from broker.runtime.heap import tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_thresholds_kept() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_collector()
    assert gc.get_freeze_count() > 0
    # Abandoned sessions' clients are closed by full collections: not made rarer.
    assert gc.get_threshold() == before


@pytest.mark.usefixtures("restored_collector")
def test_cycles_made_after_start_up_are_still_collected() -> None:
    tune_collector()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() > 0
