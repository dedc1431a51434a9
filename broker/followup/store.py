"""Apply events and audit records to the follow-up store, and read its counts back.

Per child, the ledger is opened, the record's hits are worked out against it, the counts are
added up and the ledger is sealed again, all in the caller's transaction. The ledger is sealed
with AES-GCM under the follow-up key, bound to its row (the token is the associated data), so a
copy of the table shows nothing about any child and a row cannot be swapped for another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from broker.followup.catalogue import NONE
from broker.followup.disclosure import Cell
from broker.followup.models import FollowupCount, FollowupLedger
from broker.followup.publish import CellKey
from broker.followup.tally import Hit, Ledger, StoreKey, add, from_audit, from_event
from broker.infra.db import utcnow
from broker.registry.models import Organisation

# A ledger lives a year past the child's latest activity: long enough for a first concern to
# meet its first barnteam, plan or support decision, and for late records of a school year.
RETENTION = timedelta(days=365)


class LedgerKeys:
    """The follow-up key, split in two: one for the tokens, one for sealing the ledgers."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, b"samsyn followup token", hashlib.sha256).digest()
        self._aead = AESGCM(hmac.new(key, b"samsyn followup seal", hashlib.sha256).digest())

    def token(self, pseudonym: str) -> str:
        """One-way and keyed: not the pseudonym, and not computable without the key."""
        return hmac.new(self._mac, pseudonym.encode(), hashlib.sha256).hexdigest()

    def seal(self, token: str, ledger: Ledger) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, ledger.dumps(), token.encode())

    def open(self, token: str, sealed: bytes) -> Ledger:
        return Ledger.loads(self._aead.decrypt(sealed[:12], sealed[12:], token.encode()))


def _insert(session: AsyncSession) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


async def municipalities(session: AsyncSession) -> dict[str, str | None]:
    rows = await session.execute(select(Organisation.id, Organisation.municipality))
    return dict(list(rows.tuples()))  # a TupleResult has keys(): dict() would index it


async def apply(
    session: AsyncSession,
    keys: LedgerKeys,
    records: Sequence[tuple[str, dict[str, Any]]],
    now: datetime | None = None,
) -> int:
    """Apply (``"event"`` | ``"audit"``, record) pairs in order; the number of hits counted."""
    now = now or utcnow()
    by_token: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for kind, value in records:
        pseudonym = value.get("subject_pseudonym")
        if pseudonym:  # records about no child (admin actions) count nowhere
            by_token[keys.token(pseudonym)].append((kind, value))
    if not by_token:
        return 0
    stored = await session.execute(
        select(FollowupLedger).where(FollowupLedger.token.in_(list(by_token)))
    )
    ledgers = {row.token: keys.open(row.token, row.sealed) for row in stored.scalars()}
    orgs = await municipalities(session) if any(k == "audit" for k, _ in records) else {}
    deltas: dict[StoreKey, list[int]] = {}
    hits = 0
    for token, items in by_token.items():
        ledger = ledgers.setdefault(token, Ledger())
        for kind, value in items:
            found: list[Hit] = (
                from_event(value, ledger, now)
                if kind == "event"
                else from_audit(value, ledger, orgs.get(value.get("actor_org") or ""))
            )
            hits += len(found)
            add(deltas, found, ledger)
    if deltas:
        await _add_counts(session, deltas)
    rows = [
        {
            "token": token,
            "sealed": keys.seal(token, ledger),
            "expires_at": (datetime.fromisoformat(ledger.last) if ledger.last else now) + RETENTION,
            "updated_at": now,
        }
        for token, ledger in ledgers.items()
    ]
    insert = _insert(session)(FollowupLedger)
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
    insert = _insert(session)(FollowupCount)
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
