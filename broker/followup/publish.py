"""Turn stored counts into the published tables: every cell of a fixed table, a number or "<5".

One measure's counts over one school year form one linked system: months add up to quarters and
quarters to the year, municipalities to the cooperation, age bands (and levels, grounds) to a
row's total. The whole system is protected at once (``disclosure.suppress``), so a number
withheld in one table cannot be recovered from a neighbouring one that shares its totals.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from broker.followup.catalogue import (
    ALL,
    DAYS,
    DIMENSIONS,
    TOTAL,
    months_of,
    months_of_quarter,
    quarters_of,
)
from broker.followup.disclosure import MIN_CHILDREN, Cell, Sum, suppress

# (period, municipality or ALL/NONE, dimension or TOTAL, value or TOTAL)
CellKey = tuple[str, str, str, str]
Published = dict[CellKey, int | None]  # None: shown as "<5"


def columns(dims: Sequence[str]) -> list[tuple[str, str]]:
    return [(TOTAL, TOTAL)] + [(d, v) for d in dims for v in DIMENSIONS[d][0]]


def constraints(
    year: str, rows: Sequence[str], dims: Sequence[str], *, with_months: bool = True
) -> list[Sum[CellKey]]:
    """The additive links of one measure's school year."""
    periods = [*months_of(year), *quarters_of(year), year] if with_months else [year]
    areas = [*rows, ALL]
    cols = columns(dims)
    out: list[Sum[CellKey]] = []
    for p in periods:
        for d, v in cols:
            out.append(Sum((p, ALL, d, v), tuple((p, r, d, v) for r in rows)))
        for a in areas:
            for d in dims:
                values, additive = DIMENSIONS[d]
                if additive:
                    out.append(Sum((p, a, TOTAL, TOTAL), tuple((p, a, d, v) for v in values)))
    if with_months:
        for a in areas:
            for d, v in cols:
                for q in quarters_of(year):
                    months = tuple((m, a, d, v) for m in months_of_quarter(q))
                    out.append(Sum((q, a, d, v), months))
                out.append(Sum((year, a, d, v), tuple((q, a, d, v) for q in quarters_of(year))))
    return out


def universe(sums: Sequence[Sum[CellKey]]) -> set[CellKey]:
    keys: set[CellKey] = set()
    for s in sums:
        keys.add(s.total)
        keys.update(s.parts)
    return keys


def protect(
    stored: Mapping[CellKey, Cell],
    year: str,
    rows: Sequence[str],
    dims: Sequence[str],
    *,
    with_months: bool = True,
) -> Published:
    """Every cell of the measure's tables for the year: its value, or None when withheld."""
    sums = constraints(year, rows, dims, with_months=with_months)
    cells = {k: stored.get(k, Cell(0, 0)) for k in universe(sums)}
    withheld = suppress(cells, sums)
    return {k: (None if k in withheld else c.value) for k, c in cells.items()}


@dataclass(frozen=True)
class Quartiles:
    children: int | None  # None: fewer than five, or withheld to protect another row
    q1: float | None
    median: float | None
    q3: float | None


def quartiles(histogram: Mapping[int, int], published_n: int | None) -> Quartiles:
    """Quartiles of days from a frequency table; only where its size may be published."""
    n = sum(histogram.values())
    if published_n is None or n < MIN_CHILDREN:
        return Quartiles(None, None, None, None)
    values = [days for days, count in sorted(histogram.items()) for _ in range(count)]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Quartiles(n, round(q1, 1), round(median, 1), round(q3, 1))


def histograms(stored: Mapping[CellKey, Cell], year: str) -> dict[str, dict[int, int]]:
    """The stored frequency tables of one "how early" measure, per row."""
    out: dict[str, dict[int, int]] = {}
    for (period, area, dim, value), cell in stored.items():
        if period == year and dim == DAYS and cell.value:
            out.setdefault(area, {})[int(value)] = cell.value
    return out
