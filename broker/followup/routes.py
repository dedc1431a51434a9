"""``GET /v1/followup/...``: the fixed follow-up tables, JSON or CSV, each read audited.

The audit record of a read (``service.audit_read``) names the table and the school year; it is
in ``audit.v1`` before the numbers leave (fail closed), like every other read.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from broker.auth.deps import FollowupReader, StateDep
from broker.followup import service, store
from broker.followup.catalogue import MILESTONES
from broker.followup.service import TABLES
from broker.web.openapi import PROBLEMS

router = APIRouter(tags=["followup"])
Year = Annotated[
    str | None,
    Query(max_length=7, description="School year, e.g. 2025/26 (July to June); default: now"),
]
Format = Annotated[str, Query(alias="format", pattern="^(json|csv)$", description="json or csv")]


@router.get("/v1/followup", responses=PROBLEMS)
async def index(caller: FollowupReader, state: StateDep) -> Any:
    """The tables there are and the school years with data (no numbers: not audited)."""
    async with state.sessions() as session:
        years = await store.school_years(session)
    return {
        "school_years": years,
        "tables": [
            {"id": t.id, "title": {"sv": t.sv, "en": t.en}, "counts": t.count}
            for t in TABLES.values()
        ],
        "early": "/v1/followup/early",
    }


CSV_TOO: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The table as JSON, or with format=csv as CSV "
        "(period, municipality, dim, value, count)",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


# One of the fixed tables (GET /v1/followup lists them); there are no free filters.
TableIdPath = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z_-]{0,39}$",
        description="A fixed table's id, as GET /v1/followup lists them",
        json_schema_extra={"enum": sorted(TABLES)},
    ),
]


@router.get("/v1/followup/tables/{table_id}", responses={**PROBLEMS, **CSV_TOO})
async def table(
    table_id: TableIdPath,
    caller: FollowupReader,
    state: StateDep,
    year: Year = None,
    fmt: Format = "json",
) -> Any:
    """One fixed table, whole: every month, quarter and the school year, every municipality and
    the cooperation, every breakdown. Cells from fewer than five children read "<5"."""
    school_year = service.parse_year(year)
    async with state.sessions() as session:
        published = await service.published(session, table_id, school_year)
    await service.audit_read(state, caller.org, caller.client_id, table_id, school_year)
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(service.csv_rows(published))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return published.as_json()


@router.get("/v1/followup/early", responses=PROBLEMS)
async def early(caller: FollowupReader, state: StateDep, year: Year = None) -> Any:
    """How early: days from a child's first concern to its first barnteam, plan and support
    decision (quartiles, from at least five children), and the share of attendance flags
    followed by a support decision within 30 days."""
    school_year = service.parse_year(year)
    async with state.sessions() as session:
        rows = await service.early(session, school_year)
    await service.audit_read(state, caller.org, caller.client_id, "early", school_year)
    return {
        "school_year": school_year,
        "milestones": {m: {"sv": sv, "en": en} for m, (sv, en) in MILESTONES.items()},
        "rows": [
            {
                "municipality": r.municipality,
                "name": service.MUNICIPALITY_NAMES.get(r.municipality, r.municipality),
                "days_from_first_concern": {
                    m: {
                        "children": "<5" if q.children is None else q.children,
                        "q1": q.q1,
                        "median": q.median,
                        "q3": q.q3,
                    }
                    for m, q in r.milestones.items()
                },
                "attendance_flags": "<5" if r.flags is None else r.flags,
                "followed_within_30_days": "<5" if r.flags_followed is None else r.flags_followed,
                "followed_share_percent": r.followed_share,
            }
            for r in rows
        ],
    }
