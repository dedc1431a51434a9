"""Audit records before they are sealed into the chain (:class:`broker.records.AuditEntry`).

Every process that decides, reads or changes something produces these to ``audit.v1``; the sealer
gives them ``seq``, ``prev_hash`` and ``hash``. Decision records get deterministic ids, so a
decision re-made after a crash is the same record and is sealed once; every record's id begins
with a time, a decision's with its event's (``broker.name_ids``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from broker.infra.db import utcnow
from broker.name_ids import Namespace, name_id, time_id
from broker.records import AuditAction, AuditEntry

NAMESPACE = Namespace(uuid.UUID("8a6b1f0e-6f5c-4d8e-9a51-5a3c2b1d0e7f"))


def decision_record_id(source_org: str, event_id: str, recipient: str | None, event_ms: int) -> str:
    return name_id(NAMESPACE, f"decision/{source_org}/{event_id}/{recipient or '-'}", event_ms)


def record(
    *,
    action: AuditAction,
    outcome: str,
    actor_org: str | None,
    actor_client: str | None = None,
    subject_pseudonym: str | None = None,
    event_id: str | None = None,
    recipient_org: str | None = None,
    legal_ground: str | None = None,
    purpose: str | None = None,
    categories_shared: list[str] | None = None,
    categories_withheld: list[str] | None = None,
    reasons: list[str] | None = None,
    policy_revision: str | None = None,
    decision_id: str | None = None,
    statute: str | None = None,
    review: bool | None = None,
    record_id: str | None = None,
    time: datetime | str | None = None,
) -> AuditEntry:
    """``time`` (now if None) may come as its ISO 8601 text already: the router's records of a
    batch share one time, and formatting an aware datetime was a third of the record's cost."""
    return AuditEntry(
        record_id=record_id or time_id(),
        time=time if isinstance(time, str) else (time or utcnow()).isoformat(),
        actor_org=actor_org,
        actor_client=actor_client,
        action=action.value,
        subject_pseudonym=subject_pseudonym,
        event_id=event_id,
        recipient_org=recipient_org,
        outcome=outcome,
        legal_ground=legal_ground,
        purpose=purpose,
        categories_shared=sorted(categories_shared or []),
        categories_withheld=sorted(categories_withheld or []),
        reasons=list(reasons or []),
        policy_revision=policy_revision,
        decision_id=decision_id,
        statute=statute,
        review=review,
    )
