"""The follow-up's words in the trail: which actions are reads, the verdicts an auditor gives,
and the ``key:value`` entries its records carry in ``reasons`` (hashed with the record)."""

from __future__ import annotations

from collections.abc import Iterable

from broker.records import AuditAction

READS = (AuditAction.FEED_READ, AuditAction.CHILD_READ, AuditAction.WEBHOOK_PUSH)
EMERGENCY = AuditAction.EMERGENCY_ACCESS
DECISION = AuditAction.DECISION
VERDICT = AuditAction.REVIEW_VERDICT
SAMPLE = AuditAction.REVIEW_SAMPLE
# The obligation that makes an allowed disclosure an item of the review queue; the router and
# nödöppning write each obligation of a decision into its record as ``obligation:<name>``.
REVIEW_OBLIGATION = "obligation:review"
VERDICTS = {
    "justified": "Befogad / Justified",
    "not_justified": "Inte befogad / Not justified",
    "follow_up": "Behöver följas upp / Needs follow-up",
}


def tagged(reasons: Iterable[str], key: str) -> str | None:
    """The value of the first ``key:value`` entry, or None."""
    prefix = f"{key}:"
    return next((r[len(prefix) :] for r in reasons if r.startswith(prefix)), None)


def obligations(names: Iterable[str]) -> list[str]:
    return [f"obligation:{name}" for name in names]
