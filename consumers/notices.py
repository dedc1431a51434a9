"""Notices: feed items that tell an organisation about its own information, not a child's new
information: consent withdrawals, reads of its sensitive deliveries, emergency access."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.infra.db import utcnow
from broker.privacy.payloads import Personal, feed_ad, seal_personal
from consumers.models import FeedItem

CONSENT_WITHDRAWN = "se.backabarnet.consent.withdrawn.v1"
ACCESS_NOTICE = "se.backabarnet.access.notice.v1"
EMERGENCY_NOTICE = "se.backabarnet.emergency.notice.v1"
# Categories whose reading the source organisation is told about (contract section 7).
OWNER_NOTICE_PREFIXES = ("health", "social", "police")


def notice(
    *,
    key: AESGCM,
    org: str,
    type: str,
    data: dict[str, Any],
    subject: str | None,
    subject_pseudonym: str,
    event_id: str | None = None,
    time: datetime | None = None,
) -> FeedItem:
    """A notice about one child: its number and ``data`` sealed under the child's ``key``."""
    item_id = str(uuid.uuid4())
    return FeedItem(
        item_id=item_id,
        org_id=org,
        type=type,
        event_id=event_id,
        subject_pseudonym=subject_pseudonym,
        time=time or utcnow(),
        categories=[],
        sealed=seal_personal(key, Personal(subject=subject, data=data), feed_ad(item_id)),
    )


def needs_owner_notice(categories: list[str]) -> bool:
    return any(c.startswith(OWNER_NOTICE_PREFIXES) for c in categories)
