"""Gallring: remove what has outlived its retention, and destroy the keys of children with
nothing left.

The retention of each kind of information is deployment data (``SAMSYN_GALLRING_*``, defaults and
reasons in docs/privacy.md). A delivery leaves the read model at the first of its deadlines: read
plus ``after_read``; delivered plus ``unread``; its consent ended plus ``after_consent``; a
mandatory report read plus ``report_after_read``. Notices leave ``notice`` after they were made,
accepted events (the idempotency ledger's envelope, which emergency access reads) ``accepted_event``
after acceptance. A child's data key is destroyed once nothing of the child is left: no feed item,
no accepted event, no active consent, no active relationship. That makes every copy still
lying elsewhere unreadable: Kafka segments, replicas, backups.

Every run that removes anything is one audit record (counts), every destroyed key one more (the
pseudonym); no personal data. A dry run does the same work in a transaction that is rolled back,
so what it reports is exactly what a run would do at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.audit.records import record
from broker.config import Settings
from broker.infra.db import utcnow
from broker.infra.kafka import AUDIT
from broker.infra.kafka_writer import KafkaWriter
from broker.ingest.models import AcceptedEvent
from broker.privacy.erase import remove_accepted_events, remove_feed_items
from broker.privacy.keylog import KafkaKeyLog
from broker.privacy.keyring import SubjectKeys
from broker.privacy.models import SubjectKey
from broker.records import AuditAction
from broker.registry.models import Consent, Relationship
from consumers.models import FeedItem
from consumers.reads import AuditSink

log = structlog.get_logger("samsyn.gallring")


@dataclass
class Gallring:
    """What one run removed (or, dry, would remove)."""

    deliveries: int = 0
    notices: int = 0
    accepted_events: int = 0
    keys_destroyed: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {**asdict(self), "keys_destroyed": len(self.keys_destroyed)}

    @property
    def anything(self) -> bool:
        return bool(self.deliveries or self.notices or self.accepted_events or self.keys_destroyed)


async def _expired_deliveries(session: AsyncSession, s: Settings, now: datetime) -> list[str]:
    ended = (
        select(Consent.id)
        .where(
            or_(
                Consent.withdrawn_at < now - s.gallring_after_consent,
                Consent.valid_until < now - s.gallring_after_consent,
            )
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        select(FeedItem.item_id).where(
            FeedItem.source_org.is_not(None),
            or_(
                FeedItem.first_read_at < now - s.gallring_after_read,
                FeedItem.created_at < now - s.gallring_unread,
                FeedItem.consent_id.in_(ended),
                and_(
                    FeedItem.legal_ground == "mandatory_report",
                    FeedItem.first_read_at < now - s.gallring_report_after_read,
                ),
            ),
        )
    )
    return list(rows.scalars())


async def _keys_left_alone(session: AsyncSession, s: Settings, now: datetime) -> list[str]:
    """Pseudonyms with a live key and nothing of theirs left in the database."""
    live_relationship = and_(
        Relationship.ended_at.is_(None),
        or_(Relationship.valid_until.is_(None), Relationship.valid_until > now),
    )
    rows = await session.execute(
        select(SubjectKey.pseudonym).where(
            SubjectKey.wrapped_key.is_not(None),
            SubjectKey.created_at < now - s.gallring_key_grace,
            SubjectKey.pseudonym.not_in(
                select(FeedItem.subject_pseudonym).where(FeedItem.subject_pseudonym.is_not(None))
            ),
            SubjectKey.pseudonym.not_in(select(AcceptedEvent.subject_pseudonym)),
            SubjectKey.pseudonym.not_in(
                select(Consent.subject_pseudonym).where(
                    Consent.withdrawn_at.is_(None), Consent.valid_until > now
                )
            ),
            SubjectKey.pseudonym.not_in(
                select(Relationship.subject_pseudonym).where(live_relationship)
            ),
        )
    )
    return sorted(rows.scalars())


async def run_gallring(
    sessions: async_sessionmaker[AsyncSession],
    keys: SubjectKeys,
    settings: Settings,
    emit_audit: AuditSink,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> Gallring:
    now = now or utcnow()
    async with sessions() as session:
        await session.begin()
        try:
            deliveries = await _expired_deliveries(session, settings, now)
            notices = list(
                (
                    await session.execute(
                        select(FeedItem.item_id).where(
                            FeedItem.source_org.is_(None),
                            FeedItem.created_at < now - settings.gallring_notice,
                        )
                    )
                ).scalars()
            )
            events = [
                (row[0], row[1])
                for row in await session.execute(
                    select(AcceptedEvent.source_org, AcceptedEvent.event_id).where(
                        AcceptedEvent.accepted_at < now - settings.gallring_accepted_event
                    )
                )
            ]
            await remove_feed_items(session, [*deliveries, *notices])
            await remove_accepted_events(session, events)
            done = Gallring(len(deliveries), len(notices), len(events))
            # What is left is seen after the removals above, in the same transaction.
            done.keys_destroyed = await _keys_left_alone(session, settings, now)
            if dry_run:
                return done
            destroyed = await keys.shred(session, done.keys_destroyed)
            if done.anything:
                # In Kafka before the removal commits: no removal without its record.
                await emit_audit(
                    record(
                        action=AuditAction.GALLRING,
                        outcome="ok",
                        actor_org=None,
                        reasons=[
                            f"deliveries:{done.deliveries}",
                            f"notices:{done.notices}",
                            f"accepted_events:{done.accepted_events}",
                            f"keys_destroyed:{len(destroyed)}",
                        ],
                        time=now,
                    ),
                    *(
                        record(
                            action=AuditAction.SUBJECT_KEY_DESTROYED,
                            outcome="ok",
                            actor_org=None,
                            subject_pseudonym=pseudonym,
                            reasons=["gallring"],
                            time=now,
                        )
                        for pseudonym in destroyed
                    ),
                )
            await session.commit()
            return done
        finally:
            if session.in_transaction():
                await session.rollback()


class GallringWorker:
    """Runs gallring every ``gallring_interval_s``; a failed run is tried again next time."""

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], keys: SubjectKeys
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.keys = keys
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        kafka_writer = KafkaWriter(self.settings)
        kafka_writer.start()
        emit_audit = partial(kafka_writer.send, AUDIT)
        try:
            while not self.stopping.is_set():
                wait = self.settings.gallring_interval_s
                try:
                    done = await run_gallring(self.sessions, self.keys, self.settings, emit_audit)
                    log.info("gallring", **done.counts())
                    # Keeps keys.v1 rolling its segments, so that compaction removes the wrapped
                    # copies of destroyed keys within its bound even when no child is new.
                    await KafkaKeyLog(kafka_writer).tick()
                except Exception as err:
                    # Kafka still connecting, the database away: soon again, not in an hour.
                    log.warning("gallring failed", error=type(err).__name__)
                    wait = min(wait, 30.0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=wait)
        finally:
            await kafka_writer.stop()
