"""The console's charts: stacked segments scaled to a round maximum, gridlines at whole
numbers, and nothing drawn for an empty period."""

from __future__ import annotations

from broker.audit.console.charts import bars, columns, nice_max

SERIES = (("a", "A"), ("b", "B"))


def test_round_maxima() -> None:
    assert [nice_max(v) for v in (0, 1, 3, 5, 7, 11, 240, 5001)] == [1, 1, 5, 5, 10, 20, 500, 10000]


def test_columns_stack_bottom_up() -> None:
    chart = columns({"d1": {"a": 2, "b": 3}, "d2": {"a": 0, "b": 1}}, SERIES, height=224)
    a, b, only_b = chart.segments
    assert (a.series, a.value, b.series, b.value, only_b.value) == ("a", 2, "b", 3, 1)
    # Plot height 224 - 24 - 8 = 192 for the maximum 5: 2 -> 76.8, 3 -> 115.2.
    assert round(a.height, 1) == 76.8
    assert round(b.height, 1) == 115.2
    assert round(b.y + b.height, 1) == round(a.y, 1)
    assert [t.label for t in chart.scale] == ["0", "1", "2", "3", "4", "5"]
    assert not chart.empty


def test_bars_stack_left_to_right() -> None:
    chart = bars({"org-1": {"a": 10, "b": 10}, "org-2": {"b": 5}}, SERIES, width=430)
    a, b, second = chart.segments
    assert round(a.x + a.width, 1) == round(b.x, 1)
    assert round(a.width, 1) == round(b.width, 1) == round(second.width * 2, 1)
    assert [t.label for t in chart.categories] == ["org-1", "org-2"]
    assert [t.label for t in chart.scale] == ["0", "5", "10", "15", "20"]


def test_an_empty_period_draws_nothing() -> None:
    assert columns({"d1": {}}, SERIES).empty
    assert bars({}, SERIES).empty
