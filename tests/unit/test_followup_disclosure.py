"""Publication control of the follow-up, over random activity.

The derivability check here is independent of ``broker.followup.disclosure``: floating-point
null spaces with numpy, not the module's modular elimination."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.followup.catalogue import ALL, MEASURES, NONE, TOTAL
from broker.followup.disclosure import MIN_CHILDREN, Cell, Sum, derivable, suppress
from broker.followup.publish import CellKey, Published, constraints, protect
from broker.followup.tally import Ledger, StoreKey, add, from_event
from broker.subjects.personnummer import luhn_digit

K = TypeVar("K", bound=Hashable)
YEAR = "2025/26"
START = datetime(2025, 7, 1, 9, tzinfo=UTC)
MUNIS = ("1438", "1492")
ROWS = [*MUNIS, NONE]
TYPES = {
    "concern": ("se.backabarnet.concern.raised.v1", "concerns"),
    "flag": ("se.backabarnet.attendance.flagged.v1", "attendance_flags"),
}


def fictional(index: int) -> str:
    """A fictional child (serial 98x) born 2010-2019, one number per index."""
    born = date(2010 + index % 10, 1 + index % 12, 1 + index % 28)
    nine = born.strftime("%y%m%d") + f"98{index % 10}"
    return born.strftime("%Y%m%d") + nine[6:] + str(luhn_digit(nine))


def event(child: int, muni: str, day: int, kind: str, level: int, area: int) -> dict[str, Any]:
    type_, _ = TYPES[kind]
    data: dict[str, Any] = (
        {"areas": [["trygghet", "halsa", "omsorg"][area]], "level": level}
        if kind == "concern"
        else {"period_start": "2025-08-01", "period_end": "2025-08-31", "absence_percent": 30}
    )
    return {
        "source_org": f"org-{muni}",
        "subject_pseudonym": f"p:{child}",
        "envelope": {
            "id": f"e-{child}-{day}-{kind}-{level}-{area}-{muni}",
            "type": type_,
            "time": (START + timedelta(days=day)).isoformat(),
            "subject": fictional(child),
            "data": data,
        },
    }


def municipality_of(ev: dict[str, Any]) -> str | None:
    """The source organisation's municipality (``org-1492`` is in 1492; ``org-none`` in none)."""
    code = str(ev["source_org"]).removeprefix("org-")
    return None if code == NONE else code


def tally(events: Iterable[dict[str, Any]]) -> dict[StoreKey, list[int]]:
    ledgers: dict[str, Ledger] = {}
    deltas: dict[StoreKey, list[int]] = {}
    for ev in events:
        ledger = ledgers.setdefault(ev["subject_pseudonym"], Ledger())
        add(deltas, from_event(ev, ledger, START, municipality_of(ev)), ledger)
    return deltas


def stored(deltas: dict[StoreKey, list[int]], measure: str) -> dict[CellKey, Cell]:
    return {k[1:]: Cell(e, c) for k, (e, c) in deltas.items() if k[0] == measure}


def determined(unknown: Sequence[K], sums: Sequence[Sum[K]]) -> set[K]:
    """Unknowns fixed by the sums once every other cell is known: zero rows of a null space."""
    index = {k: i for i, k in enumerate(unknown)}
    rows = []
    for s in sums:
        row = np.zeros(len(unknown))
        touched = False
        for k, coef in ((s.total, 1.0), *((p, -1.0) for p in s.parts)):
            if k in index:
                row[index[k]] += coef
                touched = True
        if touched:
            rows.append(row)
    if not unknown:
        return set()
    if not rows:
        return set()
    a = np.array(rows)
    _, sv, vt = np.linalg.svd(a)
    rank = int((sv > 1e-9).sum())
    null = vt[rank:].T  # columns span the null space
    return {k for k, i in index.items() if np.abs(null[i]).max(initial=0.0) < 1e-9}


activity = st.lists(
    st.tuples(
        st.integers(0, 24),  # child
        st.sampled_from([*MUNIS, NONE]),
        st.integers(0, 364),  # day of the school year
        st.sampled_from(sorted(TYPES)),
        st.integers(1, 4),  # level
        st.integers(0, 2),  # area
    ),
    min_size=1,
    max_size=120,
)


# The flags' tables are checked with months, quarters and the year linked; the concerns'
# (three breakdowns, one of them not additive) over the school year alone, to keep the
# independent null-space check affordable on a shared two-core machine.
LINKED_MONTHS = {"attendance_flags": True, "concerns": False}


def publish(events: list[dict[str, Any]], measure: str) -> tuple[dict[CellKey, Cell], Published]:
    cells = stored(tally(events), measure)
    dims = MEASURES[measure].dims
    return cells, protect(cells, YEAR, ROWS, dims, with_months=LINKED_MONTHS[measure])


def sums_of(measure: str) -> list[Sum[CellKey]]:
    return constraints(YEAR, ROWS, MEASURES[measure].dims, with_months=LINKED_MONTHS[measure])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(activity)
def test_no_small_cell_is_published_and_none_withheld_is_derivable(
    acts: list[tuple[int, str, int, str, int, int]],
) -> None:
    """Over random activity: every published number comes from at least five children, no
    withheld number follows from the published ones through the tables' sums, and the withheld
    parts of a published total never add up to fewer than five."""
    events = [event(*a) for a in acts]
    for measure in ("concerns", "attendance_flags"):
        cells, published = publish(events, measure)
        for key, value in published.items():
            if value is not None:
                assert cells.get(key, Cell(0, 0)).children >= MIN_CHILDREN, key
                assert value == cells.get(key, Cell(0, 0)).value
        withheld = [k for k, v in published.items() if v is None]
        assert determined(withheld, sums_of(measure)) == set(), measure
        for s in sums_of(measure):
            hidden = [cells.get(k, Cell(0, 0)).value for k in s.parts if published[k] is None]
            if published[s.total] is not None and hidden:
                # What the withheld parts of a published total add up to is no small cell.
                assert sum(hidden) >= MIN_CHILDREN, s


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(activity, st.integers(0, 30), st.sampled_from([*MUNIS, NONE]), st.integers(0, 364))
def test_one_more_event_singles_out_no_child(
    acts: list[tuple[int, str, int, str, int, int]], child: int, muni: str, day: int
) -> None:
    """Publish, add one attendance flag about one child, publish again: set side by side, the
    two releases do not tell where in a withheld cell the new flag landed, and every number
    that changed comes from at least five children."""
    events = [event(*a) for a in acts]
    _, before = publish(events, "attendance_flags")
    cells, after = publish([*events, event(child, muni, day, "flag", 1, 0)], "attendance_flags")
    both = {k for k in after if after[k] is not None and before[k] is not None}
    for k in both:
        if after[k] != before[k]:
            assert cells[k].children >= MIN_CHILDREN
    # The change d = after - before satisfies the same sums; it is known where both releases
    # publish the cell. It must stay unknown in every cell the new release withholds.
    unknown = [k for k in after if k not in both]
    exposed = determined(unknown, sums_of("attendance_flags"))
    assert not {k for k in exposed if after[k] is None}


def test_a_lone_withheld_cell_is_derivable_and_a_rectangle_is_not() -> None:
    row = [Sum("t", ("a", "b", "c"))]
    assert derivable({"a"}, row) == {"a"}
    assert derivable({"a", "b"}, row) == set()
    # Two rows, two columns, with their totals: a 2x2 rectangle of withheld cells is safe.
    grid = [
        Sum("r1", ("a1", "b1")),
        Sum("r2", ("a2", "b2")),
        Sum("ca", ("a1", "a2")),
        Sum("cb", ("b1", "b2")),
    ]
    assert derivable({"a1", "b1", "a2", "b2"}, grid) == set()
    # Two rectangles joined by one cell: every line has two withheld cells, yet the joining
    # cell follows from the sums (the reason the rule of two is not enough).
    bridge = [
        Sum("x", ("a", "b")),
        Sum("y", ("a", "b", "j")),
    ]
    assert derivable({"a", "b", "j"}, bridge) == {"j"}


def test_suppression_withholds_complements_until_nothing_is_derivable() -> None:
    cells = {
        "t": Cell(30, 30),
        "a": Cell(2, 2),  # small
        "b": Cell(20, 20),
        "c": Cell(8, 8),
    }
    withheld = suppress(cells, [Sum("t", ("a", "b", "c"))])
    assert withheld == {"a", "c"}  # the smallest complement, large enough together
    tiny = {"t": Cell(30, 30), "a": Cell(1, 1), "b": Cell(2, 2), "c": Cell(27, 27)}
    # a and b are small; together they are 3, still a small number: c goes too.
    assert suppress(tiny, [Sum("t", ("a", "b", "c"))]) == {"a", "b", "c"}


def test_the_cooperation_row_and_quarters_are_linked_to_months() -> None:
    sums = constraints(YEAR, ROWS, ())
    totals = {s.total for s in sums}
    assert ("2025-Q3", ALL, TOTAL, TOTAL) in totals
    assert ("2025/26", "1492", TOTAL, TOTAL) in totals
