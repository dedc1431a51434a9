"""The fixed tables the follow-up publishes, read from the store and protected.

A caller picks a table and a school year, nothing else: every table comes whole (every month,
quarter and the year; every municipality and the cooperation; every breakdown), so no two
requests can be cut to differ by one child.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.records import record
from broker.followup import store
from broker.followup.catalogue import (
    ALL,
    MEASURES,
    MILESTONES,
    NONE,
    TOTAL,
    early_measure,
    months_of,
    quarters_of,
    school_year,
)
from broker.followup.disclosure import MIN_CHILDREN, Cell
from broker.followup.publish import (
    CellKey,
    Published,
    Quartiles,
    columns,
    histograms,
    protect,
    quartiles,
)
from broker.infra.db import utcnow
from broker.records import AuditAction
from broker.runtime.state import AppState
from broker.web.errors import InvalidInput, NotFound

SCHOOL_YEAR = re.compile(r"^(\d{4})/(\d{2})$")
# Names of the Dalsland municipalities the demo and the seed documents use; any other
# municipality is shown by its kommunkod.
MUNICIPALITY_NAMES = {
    "1460": "Bengtsfors",
    "1438": "Dals-Ed",
    "1439": "Färgelanda",
    "1461": "Mellerud",
    "1492": "Åmål",
    NONE: "Utan kommun / no municipality",
    ALL: "Hela samverkan / whole cooperation",
}


@dataclass(frozen=True)
class Table:
    id: str
    measure: str
    count: str  # "events" or "children"
    sv: str
    en: str


def _tables() -> dict[str, Table]:
    out = {m.id: Table(m.id, m.id, "events", m.sv, m.en) for m in MEASURES.values()}
    for measure, sv, en in (
        ("concerns", "Barn med oro anmäld", "Children with a concern"),
        ("barnteam", "Barn med barnteam", "Children with a barnteam"),
        ("plans", "Barn med plan", "Children with a plan"),
    ):
        out[f"children-{measure}"] = Table(f"children-{measure}", measure, "children", sv, en)
    return out


TABLES = _tables()


@dataclass
class PublishedTable:
    table: Table
    year: str
    rows: list[str]
    cols: list[tuple[str, str]]
    cells: Published

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table.id,
            "title": {"sv": self.table.sv, "en": self.table.en},
            "counts": self.table.count,
            "school_year": self.year,
            "min_children": MIN_CHILDREN,
            "periods": [*months_of(self.year), *quarters_of(self.year), self.year],
            "municipalities": [
                {"code": r, "name": MUNICIPALITY_NAMES.get(r, r)} for r in [*self.rows, ALL]
            ],
            "columns": [{"dim": d, "value": v} for d, v in self.cols],
            "cells": [
                {
                    "period": p,
                    "municipality": a,
                    "dim": d,
                    "value": v,
                    "count": "<5" if n is None else n,
                }
                for (p, a, d, v), n in sorted(self.cells.items())
            ],
        }

    def value(self, period: str, area: str, dim: str = TOTAL, value: str = TOTAL) -> int | None:
        return self.cells.get((period, area, dim, value))


@dataclass
class EarlyRow:
    municipality: str
    milestones: dict[str, Quartiles] = field(default_factory=dict)
    flags: int | None = None
    flags_followed: int | None = None

    @property
    def followed_share(self) -> float | None:
        if not self.flags or self.flags_followed is None:
            return None
        return round(100 * self.flags_followed / self.flags, 1)


def parse_year(raw: str | None) -> str:
    if raw is None:
        return school_year(utcnow().date())
    m = SCHOOL_YEAR.match(raw)
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise InvalidInput(
            "/year: a school year is written 2025/26 (July 2025 to June 2026)",
            errors=[{"pointer": "/year", "detail": "not a school year like 2025/26"}],
        )
    return raw


async def _rows(session: AsyncSession, stored_areas: set[str]) -> list[str]:
    """The registry's municipalities, and any a stored count names (an event may name one)."""
    known = await store.rows(session)
    extra = sorted(stored_areas - set(known) - {ALL})
    return [*[r for r in known if r != NONE], *extra, NONE]


async def published(session: AsyncSession, table_id: str, year: str) -> PublishedTable:
    table = TABLES.get(table_id)
    if table is None:
        raise NotFound(f"no follow-up table {table_id!r}; GET /v1/followup lists them")
    measure = MEASURES[table.measure]
    periods = [*months_of(year), *quarters_of(year), year]
    stored = await store.counts(session, measure.id, periods, table.count)
    rows = await _rows(session, {k[1] for k in stored})
    cells = _protected(stored, year, rows, measure.dims)
    return PublishedTable(table, year, rows, columns(measure.dims), cells)


# The same counts always give the same published table: remember the last few, so a page that
# shows many tables does not solve each again until the counts change.
_CACHE: dict[tuple[Any, ...], Published] = {}
_CACHE_SIZE = 64


def _protected(
    stored: dict[CellKey, Cell], year: str, rows: list[str], dims: tuple[str, ...]
) -> Published:
    key = (year, tuple(rows), dims, frozenset(stored.items()))
    found = _CACHE.get(key)
    if found is None:
        found = protect(stored, year, rows, dims)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = found
    return found


async def early(session: AsyncSession, year: str) -> list[EarlyRow]:
    """How early, per municipality and for the cooperation: quartiles of days from the first
    concern to the first barnteam, plan and support decision; attendance flags followed by a
    support decision within 30 days."""
    out: dict[str, EarlyRow] = {}
    flags = await published(session, "attendance_flags", year)
    followed = await published(session, "flags_followed", year)
    for milestone in MILESTONES:
        stored = await store.counts(session, early_measure(milestone), [year], "children")
        totals = {k: c for k, c in stored.items() if k[2] == TOTAL}
        rows = await _rows(session, {k[1] for k in stored} | set(flags.rows))
        sizes = protect(totals, year, rows, (), with_months=False)
        spread = histograms(stored, year)
        for area in [*rows, ALL]:
            row = out.setdefault(area, EarlyRow(area))
            row.milestones[milestone] = quartiles(
                spread.get(area, {}), sizes.get((year, area, TOTAL, TOTAL))
            )
    for area, row in out.items():
        row.flags = flags.value(year, area)
        row.flags_followed = followed.value(year, area)
    return list(out.values())


async def audit_read(
    state: AppState, org: str | None, client: str | None, what: str, period: str
) -> None:
    """Every read of follow-up numbers, API or console, is in the audit trail (fail closed)."""
    await state.emit_audit(
        record(
            action=AuditAction.FOLLOWUP_READ,
            outcome="ok",
            actor_org=org,
            actor_client=client,
            reasons=[f"table:{what}", f"school_year:{period}"],
        )
    )


def csv_rows(table: PublishedTable) -> list[list[str]]:
    head = ["period", "municipality", "dim", "value", "count"]
    body = [
        [p, a, d, v, "<5" if n is None else str(n)]
        for (p, a, d, v), n in sorted(table.cells.items())
    ]
    return [head, *body]
