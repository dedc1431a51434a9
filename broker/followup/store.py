"""Apply events and audit records to the follow-up store, and read its counts back.

Per child, the ledger is opened, the record's hits are worked out against it, the counts are
added up and the ledger is sealed again, all in the caller's transaction. The ledger is sealed
under the child's own data key (``broker/privacy``), bound to its row (the token is in the
associated data): a copy of the table shows nothing about any child, a row cannot be swapped
for another, and shredding the child's key destroys its milestones with everything else.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.followup.catalogue import NONE
from broker.followup.disclosure import Cell
from broker.followup.models import FollowupCount, FollowupLedger
from broker.followup.publish import CellKey
from broker.followup.tally import Hit, Ledger, StoreKey, add, from_audit, from_event
from broker.infra.db import dialect_insert, utcnow
from broker.privacy.aead import Unreadable, associated, seal, unseal
from broker.privacy.payloads import event_ad, join_envelope, open_personal
from broker.registry.models import Organisation

# A ledger lives a year past the child's latest activity: long enough for a first concern to
# meet its first barnteam, plan or support decision, and for late records of a school year.
RETENTION = timedelta(days=365)


class LedgerTokens:
    """The ledgers' row keys, made with the follow-up's own key."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, b"samsyn followup token", hashlib.sha256).digest()

    def token(self, pseudonym: str) -> str:
        """One-way and keyed: not the pseudonym, and not computable without the key."""
        return hmac.new(self._mac, pseudonym.encode(), hashlib.sha256).hexdigest()


def _ad(token: str) -> bytes:
    return associated("followup.ledger", token)


def seal_ledger(key: AESGCM, token: str, ledger: Ledger) -> bytes:
    return seal(key, ledger.dumps(), _ad(token)).encode("ascii")


def open_ledger(key: AESGCM | None, token: str, sealed: bytes) -> Ledger:
    """The child's ledger; a new one where the child's key was shredded (nothing remains)."""
    try:
        return Ledger.loads(unseal(key, sealed.decode("ascii"), _ad(token)))
    except Unreadable:
        return Ledger()


def _opened(value: dict[str, Any], key: AESGCM | None) -> dict[str, Any] | None:
    """An ``events.v1`` record with its sealed part (the child's number, the data) opened;
    None when it does not open: the child was erased, and its events count no more."""
    envelope = value["envelope"]
    try:
        personal = open_personal(
            key, value["sealed"], event_ad(value["source_org"], envelope["id"])
        )
    except Unreadable:
        return None
    return {**value, "envelope": join_envelope(envelope, personal)}


async def municipalities(session: AsyncSession) -> dict[str, str | None]:
    rows = await session.execute(select(Organisation.id, Organisation.municipality))
    return dict(list(rows.tuples()))  # a TupleResult has keys(): dict() would index it


def pseudonyms(records: Sequence[tuple[str, dict[str, Any]]]) -> set[str]:
    """The children the records are about: whose data keys ``apply`` needs."""
    return {p for _, value in records if (p := value.get("subject_pseudonym"))}


async def apply(
    session: AsyncSession,
    tokens: LedgerTokens,
    child_keys: Mapping[str, AESGCM],
    records: Sequence[tuple[str, dict[str, Any]]],
    now: datetime | None = None,
) -> int:
    """Apply (``"event"`` | ``"audit"``, record) pairs in order, with each child's data key
    (``SubjectKeys.for_writing(pseudonyms(records))``); the number of hits counted."""
    now = now or utcnow()
    by_token: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    key_of: dict[str, AESGCM] = {}
    for kind, value in records:
        pseudonym = value.get("subject_pseudonym")
        if pseudonym:  # records about no child (admin actions) count nowhere
            token = tokens.token(pseudonym)
            by_token[token].append((kind, value))
            key_of[token] = child_keys[pseudonym]
    if not by_token:
        return 0
    stored = await session.execute(
        select(FollowupLedger).where(FollowupLedger.token.in_(list(by_token)))
    )
    ledgers = {
        row.token: open_ledger(key_of[row.token], row.token, row.sealed) for row in stored.scalars()
    }
    orgs = await municipalities(session)
    deltas: dict[StoreKey, list[int]] = {}
    hits = 0
    for token, items in by_token.items():
        ledger = ledgers.setdefault(token, Ledger())
        for kind, value in items:
            if kind == "event":
                event = _opened(value, key_of[token])
                muni = orgs.get(value["source_org"])
                found: list[Hit] = from_event(event, ledger, now, muni) if event else []
            else:
                found = from_audit(value, ledger, orgs.get(value.get("actor_org") or ""))
            hits += len(found)
            add(deltas, found, ledger)
    if deltas:
        await _add_counts(session, deltas)
    rows = [
        {
            "token": token,
            "sealed": seal_ledger(key_of[token], token, ledger),
            "expires_at": (datetime.fromisoformat(ledger.last) if ledger.last else now) + RETENTION,
            "updated_at": now,
        }
        for token, ledger in ledgers.items()
    ]
    insert = dialect_insert(session, FollowupLedger)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["token"],
            set_={
                "sealed": insert.excluded.sealed,
                "expires_at": insert.excluded.expires_at,
                "updated_at": insert.excluded.updated_at,
            },
        ),
        rows,
    )
    return hits


async def _add_counts(session: AsyncSession, deltas: Mapping[StoreKey, list[int]]) -> None:
    insert = dialect_insert(session, FollowupCount)
    table = FollowupCount.__table__
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["measure", "period", "area", "dim", "value"],
            set_={
                "events": table.c.events + insert.excluded.events,
                "children": table.c.children + insert.excluded.children,
            },
        ),
        [
            {
                "measure": m,
                "period": p,
                "area": a,
                "dim": d,
                "value": v,
                "events": e,
                "children": c,
            }
            for (m, p, a, d, v), (e, c) in sorted(deltas.items())
        ],
    )


async def forget_expired(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete the ledgers whose time is up; the counts they fed stay."""
    result = await session.execute(
        delete(FollowupLedger).where(FollowupLedger.expires_at < (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def counts(
    session: AsyncSession, measure: str, periods: Sequence[str], field: str
) -> dict[CellKey, Cell]:
    """The stored counts of one measure over the given periods: value is ``field``."""
    rows = await session.execute(
        select(FollowupCount).where(
            FollowupCount.measure == measure, FollowupCount.period.in_(list(periods))
        )
    )
    return {
        (r.period, r.area, r.dim, r.value): Cell(
            r.events if field == "events" else r.children, r.children
        )
        for r in rows.scalars()
    }


async def rows(session: AsyncSession) -> list[str]:
    """The table rows: the cooperation's municipalities (from the registry), and "none"."""
    found = await session.execute(
        select(Organisation.municipality).where(Organisation.municipality.is_not(None)).distinct()
    )
    return [*sorted({m for m in found.scalars() if m}), NONE]


async def school_years(session: AsyncSession, measure: str | None = None) -> list[str]:
    """The school years with counts (of ``measure``), latest first."""
    query = select(FollowupCount.period).where(FollowupCount.period.like("%/%"))
    if measure is not None:
        query = query.where(FollowupCount.measure == measure)
    found = await session.execute(query.distinct())
    return sorted(found.scalars(), reverse=True)
