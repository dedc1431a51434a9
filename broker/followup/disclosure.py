"""Publication control: which cells of a set of linked tables may be published.

A *cell* is one number (say: concerns raised in Åmål in March 2026 by children aged 6–9) with
the number of distinct children behind it. A *constraint* says that one cell is the sum of
others (a municipality's total is the sum of its age bands; the cooperation is the sum of its
municipalities; a quarter is the sum of its months). The rules, as official statistics apply
them (see docs/followup.md):

1. Primary suppression: a cell from fewer than ``MIN_CHILDREN`` children (zero included) is
   shown as "<5".
2. Complementary suppression: more cells are withheld until no withheld cell can be computed
   from what is published through the constraints. "Computed" is exact linear algebra: a
   withheld cell is derivable when its unit vector lies in the row space of the constraints
   restricted to the withheld cells (the published ones move to the right-hand side).
3. Withheld parts of a published total add up to a known number; that number is held to the
   same floor: at least ``MIN_CHILDREN`` (else one more part is withheld). Without this rule
   two withheld zeros next to a published month and quarter would be known zeros.

The rank computations run modulo a 61-bit prime: the constraint coefficients are 0 and ±1, so a
rank over the rationals differs from the rank modulo p only if p divides a minor, which a prime
this large practically never does; exact rationals would be many times slower.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
MIN_CHILDREN = 5
_P = (1 << 61) - 1  # a Mersenne prime


@dataclass(frozen=True)
class Cell:
    value: int  # what would be published: events or children
    children: int  # distinct children behind it: what primary suppression looks at


@dataclass(frozen=True)
class Sum(Generic[K]):
    """``total`` is the sum of ``parts``."""

    total: K
    parts: tuple[K, ...]


def _rows(constraints: Sequence[Sum[K]]) -> list[dict[K, int]]:
    rows = []
    for c in constraints:
        row: dict[K, int] = defaultdict(int)
        row[c.total] += 1
        for p in c.parts:
            row[p] -= 1
        rows.append({k: v % _P for k, v in row.items() if v % _P})
    return rows


def derivable(withheld: Iterable[K], constraints: Sequence[Sum[K]]) -> set[K]:
    """The withheld cells that the constraints determine once the other cells are known.

    Gauss-Jordan elimination on the constraints restricted to the withheld cells: a cell is
    determined exactly when a row of the reduced form is its unit vector."""
    hidden = set(withheld)
    if not hidden:
        return set()
    pivots: dict[K, dict[K, int]] = {}  # pivot cell -> its row (reduced)
    for full in _rows(constraints):
        row = {k: v for k, v in full.items() if k in hidden}
        # Reduce by the rows found so far.
        for k in [k for k in row if k in pivots]:
            if k not in row:
                continue
            factor = row[k]
            for kk, vv in pivots[k].items():
                nv = (row.get(kk, 0) - factor * vv) % _P
                if nv:
                    row[kk] = nv
                else:
                    row.pop(kk, None)
        if not row:
            continue
        pivot = min(row, key=repr)
        inv = pow(row[pivot], _P - 2, _P)
        row = {k: v * inv % _P for k, v in row.items()}
        # Keep the form reduced: eliminate the new pivot from the earlier rows.
        for other in pivots.values():
            scale = other.get(pivot, 0)
            if scale:
                for kk, vv in row.items():
                    nv = (other.get(kk, 0) - scale * vv) % _P
                    if nv:
                        other[kk] = nv
                    else:
                        other.pop(kk, None)
        pivots[pivot] = row
    return {k for k, row in pivots.items() if len(row) == 1}


def suppress(cells: Mapping[K, Cell], constraints: Sequence[Sum[K]]) -> set[K]:
    """The cells to withhold: the small ones, and as few more as keep them underivable.

    Complements are chosen deterministically (smallest value first, then by key), so the same
    data always gives the same pattern and a republished table differs only where data did."""
    withheld = {k for k, c in cells.items() if c.children < MIN_CHILDREN}
    by_cell: dict[K, list[Sum[K]]] = defaultdict(list)
    for c in constraints:
        for k in (c.total, *c.parts):
            by_cell[k].append(c)

    def cheapest(options: Iterable[K]) -> K | None:
        free = [k for k in options if k not in withheld and k in cells]
        return min(free, key=lambda k: (cells[k].value, repr(k))) if free else None

    def exposed_in(c: Sum[K]) -> bool:
        hidden = [k for k in c.parts if k in withheld]
        if c.total in withheld:
            return not hidden
        return bool(hidden) and (
            len(hidden) == 1 or sum(cells[k].value for k in hidden) < MIN_CHILDREN
        )

    def nearest_free(k: K) -> K | None:
        return cheapest(_nearest(k, by_cell, set(cells) - withheld))

    while True:
        # The cheap rules first: a constraint with exactly one withheld cell gives it away, and
        # withheld parts of a published total add up to a known sum: under five, that sum is a
        # small cell of its own (zero even tells that each of them is zero).
        changed = True
        while changed:
            changed = False
            for c in constraints:
                if not exposed_in(c):
                    continue
                extra = cheapest(c.parts)
                if extra is None and c.total not in withheld:
                    extra = c.total
                if extra is not None:
                    withheld.add(extra)
                    changed = True
        exposed = derivable(withheld, constraints)
        if not exposed:
            return withheld
        for k in sorted(exposed, key=repr):
            extra = nearest_free(k)
            if extra is None:
                return set(cells)  # nothing left to publish safely: withhold it all
            withheld.add(extra)


def _nearest(start: K, by_cell: Mapping[K, list[Sum[K]]], free: set[K]) -> list[K]:
    """The published cells closest to ``start`` through shared constraints (breadth first)."""
    seen = {start}
    frontier = [start]
    while frontier:
        found: list[K] = []
        following: list[K] = []
        for k in frontier:
            for c in by_cell[k]:
                for m in (*c.parts, c.total):
                    if m in seen:
                        continue
                    seen.add(m)
                    (found if m in free else following).append(m)
        if found:
            return found
        frontier = following
    return []
