"""``POST /v1/admin/subjects/{subject}/shred``: erase a child (admin scope, audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from broker.auth.deps import Admin, StateDep
from broker.privacy.shred import shred_subject
from broker.subjects.input import subject_of
from broker.web.openapi import PROBLEMS

router = APIRouter(tags=["admin"])


class ShredIn(BaseModel):
    reason: str = Field(
        min_length=10,
        max_length=500,
        description="Why the child is erased (a case or decision reference; never the child's "
        "name or number): it is kept in the audit trail",
    )


class ShredOut(BaseModel):
    feed_items: int = Field(description="Deliveries and notices deleted")
    accepted_events: int = Field(description="Accepted events deleted")
    keys_destroyed: int = Field(description="Data keys destroyed (0 if none was live)")


@router.post("/v1/admin/subjects/{subject}/shred", response_model=ShredOut, responses=PROBLEMS)
async def shred(subject: str, body: ShredIn, caller: Admin, state: StateDep) -> Any:
    """Radera ett barn / erase a child: its feed items and accepted events are deleted and its
    data key destroyed, so no copy anywhere (Kafka, backups) can be read again. The audit trail
    keeps its records (no payloads in them). Answers the same for a child never seen."""
    pn = subject_of(subject, pointer="/subject")
    return await shred_subject(state, caller, pn, body.reason)
