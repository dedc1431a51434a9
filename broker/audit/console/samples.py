"""Sample checks: draw a reproducible random sample of an organisation's reads in a month
(``review.sample``, the seed recorded), look at each read, record the sample's verdict
(``review.verdict`` naming the sample)."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from broker.audit.console.auth import csrf_valid, load_session
from broker.audit.console.pages import Viewer, audit, page, see_other, to_login
from broker.audit.console.review import NOTE_MAX, checked_verdict
from broker.audit.followup import samples
from broker.audit.followup.models import ReviewSample
from broker.audit.followup.queue import verdict_reasons
from broker.audit.followup.vocabulary import SAMPLE, VERDICT
from broker.auth.deps import StateDep
from broker.records import AuditAction
from broker.web.errors import InvalidInput, NotFound

router = APIRouter()
SEED = r"^[A-Za-z0-9_-]{0,64}$"


@router.get("/samples")
async def list_page(
    request: Request,
    state: StateDep,
    user: Viewer,
    org: Annotated[str, Query(max_length=63)] = "",
) -> Response:
    if user is None:
        return to_login()
    async with state.sessions() as db:
        drawn = await samples.recent(db, org.strip())
    await audit(state, user, AuditAction.ADMIN_AUDIT_SAMPLES, reasons=[f"org={org}"])
    context = {
        "user": user,
        "drawn": drawn,
        "org": org,
        "month": datetime.now(UTC).strftime("%Y-%m"),
        "size_max": samples.SIZE_MAX,
    }
    return page(request, "samples.html", context)


@router.post("/samples")
async def draw_sample(
    request: Request,
    state: StateDep,
    user: Viewer,
    csrf: Annotated[str, Form(max_length=100)],
    org: Annotated[str, Form(min_length=1, max_length=63)],
    month: Annotated[str, Form(max_length=7)],
    size: Annotated[int, Form(ge=1, le=samples.SIZE_MAX)] = 10,
    seed: Annotated[str, Form(pattern=SEED)] = "",
) -> Response:
    """Draw and record the sample; an empty seed is a fresh random one (then recorded)."""
    if user is None or not csrf_valid(load_session(request), csrf):
        return to_login()
    org, seed = org.strip(), seed or secrets.token_hex(8)
    async with state.sessions() as db:
        reads = await samples.population(db, org, month)
    if not reads:
        raise InvalidInput(f"/org: {org} has no reads in {month}")
    sample_id = str(uuid.uuid4())
    await audit(
        state,
        user,
        SAMPLE,
        record_id=sample_id,
        recipient_org=org,
        reasons=samples.sample_reasons(
            org, month, seed, len(reads), samples.draw(reads, seed, size)
        ),
    )
    return see_other(f"/audit/samples/{sample_id}?drawn=1")


@router.get("/samples/{sample_id}")
async def sample_page(
    sample_id: Annotated[str, Path(max_length=36)],
    request: Request,
    state: StateDep,
    user: Viewer,
    sent: str = "",
    drawn: str = "",
) -> Response:
    if user is None:
        return to_login()
    async with state.sessions() as db:
        sample = await db.get(ReviewSample, sample_id)
        reads = await samples.sampled_reads(db, sample) if sample else []
    if sample is None and drawn:
        # Drawn a moment ago and not sealed yet: the page reloads until it is.
        return page(request, "sample.html", {"user": user, "sample": None}, status=202)
    if sample is None:
        raise NotFound(f"no sample {sample_id}")
    await audit(state, user, AuditAction.ADMIN_AUDIT_VIEW, reasons=[f"sample={sample_id}"])
    context = {
        "user": user,
        "sample": sample,
        "reads": reads,
        "pending": bool(sent) and not sample.verdict,
    }
    return page(request, "sample.html", context)


@router.post("/samples/{sample_id}")
async def record_result(
    sample_id: Annotated[str, Path(max_length=36)],
    request: Request,
    state: StateDep,
    user: Viewer,
    csrf: Annotated[str, Form(max_length=100)],
    verdict: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=NOTE_MAX)] = "",
) -> Response:
    if user is None or not csrf_valid(load_session(request), csrf):
        return to_login()
    verdict, note = checked_verdict(verdict, note)
    async with state.sessions() as db:
        sample = await db.get(ReviewSample, sample_id)
    if sample is None:
        raise NotFound(f"no sample {sample_id}")
    await audit(
        state,
        user,
        VERDICT,
        recipient_org=sample.org,
        reasons=verdict_reasons(f"sample:{sample_id}", verdict, note),
    )
    return see_other(f"/audit/samples/{sample_id}?sent=1")
