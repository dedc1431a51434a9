"""The collector settings of the long-running processes (``broker/runtime/heap.py``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from broker.runtime.heap import YOUNG_COLLECTION_EVERY, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_made_rarer() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    tune_collector()
    assert gc.get_freeze_count() > 0
    # The older generations keep the interpreter's ratios to the young one.
    assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, 10, 10)
    assert YOUNG_COLLECTION_EVERY > 700


@pytest.mark.usefixtures("restored_collector")
def test_cycles_made_after_start_up_are_still_collected() -> None:
    tune_collector()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() > 0
