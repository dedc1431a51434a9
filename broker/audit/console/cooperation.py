"""The cooperation's follow-up in the console (``/audit/cooperation/``): charts of the fixed
follow-up tables for a school year, and a printable quarterly report for the steering group.

Only published numbers reach these pages (``broker.followup.service``): a withheld cell is
drawn as "<5". Each view is audited like an API read of the same tables.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.console.pages import HERE, Viewer, page, to_login
from broker.auth.deps import StateDep
from broker.followup import charts, service, store
from broker.followup.catalogue import (
    ALL,
    AREA_NAMES,
    AREAS,
    GROUNDS,
    MILESTONES,
    months_of,
    quarters_of,
    year_of_period,
)
from broker.followup.service import MUNICIPALITY_NAMES, PublishedTable
from broker.web.errors import Problem

router = APIRouter(prefix="/cooperation")
QUARTER = re.compile(r"^\d{4}-Q[1-4]$")
MONTHS_SV = ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec")
# The quarterly report: the activity measures, in the order a steering group reads them.
ACTIVITY = (
    "concerns",
    "attendance_flags",
    "support_decisions",
    "barnteam",
    "plans",
    "mandatory_reports",
    "consents_given",
    "consents_withdrawn",
    "emergency_access",
)
REACHED = ("children-concerns", "children-barnteam", "children-plans")


def _name(code: str) -> str:
    return MUNICIPALITY_NAMES.get(code, code)


def _short(code: str) -> str:
    """A column head: the Swedish name alone."""
    return _name(code).split(" / ")[0]


def _month_label(m: str) -> str:
    return MONTHS_SV[int(m[5:7]) - 1]


async def _tables(session: AsyncSession, year: str, ids: tuple[str, ...]) -> dict[str, Any]:
    return {t: await service.published(session, t, year) for t in ids}


def _reached_chart(reached: dict[str, PublishedTable], period: str) -> Any:
    rows = reached["children-concerns"].rows
    return charts.bars(
        "Barn som nåtts / Children reached",
        [(_name(r), [reached[t].value(period, r) for t in REACHED]) for r in [*rows, ALL]],
        [f"{reached[t].table.sv} / {reached[t].table.en}" for t in REACHED],
    )


@router.get("/cooperation.css")
async def stylesheet() -> FileResponse:
    return FileResponse(HERE / "templates" / "cooperation.css", media_type="text/css")


@router.get("/")
async def overview(
    request: Request,
    state: StateDep,
    user: Viewer,
    year: Annotated[str | None, Query(max_length=7)] = None,
) -> Response:
    """The school year in charts: concerns by area per month per municipality, children
    reached, time to first support, sharing itself."""
    if user is None:
        return to_login()
    async with state.sessions() as session:
        years = await store.school_years(session, "concerns")
    try:
        # Without a choice: the latest school year with concerns.
        school_year = service.parse_year(year or (years[0] if years else None))
    except Problem as err:
        return page(request, "cooperation.html", {"user": user, "error": err.detail}, 422)
    async with state.sessions() as session:
        concerns = await service.published(session, "concerns", school_year)
        reached = await _tables(session, school_year, REACHED)
        early = await service.early(session, school_year)
        sharing = await _tables(
            session,
            school_year,
            ("decisions", "consents_given", "consents_withdrawn", "emergency_access"),
        )
    await service.audit_read(state, user.org, user.actor_client, "console", school_year)
    months, quarters = months_of(school_year), quarters_of(school_year)
    areas = [*concerns.rows, ALL]
    by_month = charts.heatmap(
        "Oro per månad och kommun / Concerns by month and municipality",
        [(_name(a), [concerns.value(m, a) for m in months]) for a in areas],
        [_month_label(m) for m in months],
    )
    by_area = charts.heatmap(
        f"Oro per behovsområde och kommun, läsåret {school_year} / Concerns by area",
        [
            (f"{sv} / {en}", [concerns.value(school_year, a, "area", area) for a in areas])
            for area in AREAS
            for sv, en in [AREA_NAMES[area]]
        ],
        [_short(a) for a in areas],
    )
    per_municipality = [
        (
            _name(a),
            charts.heatmap(
                f"Oro per behovsområde och kvartal, {_name(a)} / Concerns by area and quarter",
                [
                    (f"{sv} / {en}", [concerns.value(q, a, "area", area) for q in quarters])
                    for area in AREAS
                    for sv, en in [AREA_NAMES[area]]
                ],
                quarters,
            ),
        )
        for a in areas
    ]
    milestone_names = [f"{sv} / {en}" for sv, en in MILESTONES.values()]
    early_by_area = {r.municipality: r for r in early}
    spread = charts.spreads(
        "Dagar från första oro / Days from the first concern",
        [
            (_name(a), [early_by_area[a].milestones[m] for m in MILESTONES])
            for a in areas
            if a in early_by_area
        ],
        milestone_names,
    )
    decisions = sharing["decisions"]
    context = {
        "user": user,
        "year": school_year,
        "years": years or [school_year],
        "quarters": quarters,
        "by_month": by_month,
        "by_area": by_area,
        "per_municipality": per_municipality,
        "reached": _reached_chart(reached, school_year),
        "spread": spread,
        "early": [(_name(r.municipality), r) for r in early],
        "grounds": GROUNDS,
        "decisions": {
            g: (
                decisions.value(school_year, ALL, "ground_outcome", f"{g}:allow"),
                decisions.value(school_year, ALL, "ground_outcome", f"{g}:deny"),
            )
            for g in GROUNDS
        },
        "sharing_rows": [
            (
                _name(r),
                [
                    sharing[t].value(school_year, r)
                    for t in ("decisions", "consents_given", "consents_withdrawn")
                ]
                + [sharing["emergency_access"].value(school_year, r)],
            )
            for r in [*decisions.rows, ALL]
        ],
    }
    return page(request, "cooperation.html", context)


@router.get("/report")
async def quarterly_report(
    request: Request,
    state: StateDep,
    user: Viewer,
    quarter: Annotated[str, Query(max_length=7)] = "",
) -> Response:
    """A printable report of one quarter for the steering group's minutes."""
    if user is None:
        return to_login()
    if not QUARTER.match(quarter):
        return page(
            request,
            "cooperation_report.html",
            {"user": user, "error": "Ange ett kvartal som 2026-Q1 / give a quarter like 2026-Q1"},
            422,
        )
    school_year = year_of_period(quarter)
    async with state.sessions() as session:
        activity = await _tables(session, school_year, ACTIVITY)
        reached = await _tables(session, school_year, REACHED)
        early = await service.early(session, school_year)
    await service.audit_read(state, user.org, user.actor_client, f"report:{quarter}", school_year)
    rows = activity["concerns"].rows
    context = {
        "user": user,
        "quarter": quarter,
        "year": school_year,
        "measures": [(activity[t].table.sv, activity[t].table.en) for t in ACTIVITY],
        "municipalities": [
            (_name(r), [activity[t].value(quarter, r) for t in ACTIVITY]) for r in [*rows, ALL]
        ],
        "reached": _reached_chart(reached, quarter),
        "early": [(_name(r.municipality), r) for r in early],
        "milestones": MILESTONES,
    }
    return page(request, "cooperation_report.html", context)
