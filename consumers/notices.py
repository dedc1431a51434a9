"""Notices: feed items that tell an organisation about its own information, not a child's new
information: consent withdrawals, reads of its sensitive deliveries, emergency access."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from broker.infra.db import utcnow
from consumers.models import FeedItem

CONSENT_WITHDRAWN = "se.backabarnet.consent.withdrawn.v1"
ACCESS_NOTICE = "se.backabarnet.access.notice.v1"
EMERGENCY_NOTICE = "se.backabarnet.emergency.notice.v1"
# Categories whose reading the source organisation is told about (contract section 7).
OWNER_NOTICE_PREFIXES = ("health", "social", "police")


def notice(
    *,
    org: str,
    type: str,
    data: dict[str, Any],
    event_id: str | None = None,
    subject: str | None = None,
    subject_pseudonym: str | None = None,
    time: datetime | None = None,
) -> FeedItem:
    return FeedItem(
        item_id=str(uuid.uuid4()),
        org_id=org,
        type=type,
        event_id=event_id,
        subject=subject,
        subject_pseudonym=subject_pseudonym,
        time=time or utcnow(),
        categories=[],
        data=data,
    )


def needs_owner_notice(categories: list[str]) -> bool:
    return any(c.startswith(OWNER_NOTICE_PREFIXES) for c in categories)
