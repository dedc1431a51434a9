"""Erasure on demand: every trace of one child that Samsyn can read, gone at once.

For a child published by mistake (under a wrong personnummer) or an order from the supervisory
authority. In one transaction: the child's feed items (deliveries and notices, with their webhook
attempts) and accepted events (with their routing summaries) are deleted and its data key is
destroyed, which makes every other copy unreadable: the records in Kafka, replicas, backups. The
audit trail keeps its records, which hold no payloads: the chain still verifies and the
guardian's log extract still says who received and read what, and that it was erased.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from broker.audit.records import record
from broker.auth.tokens import Caller
from broker.infra.db import transaction
from broker.ingest.models import AcceptedEvent
from broker.privacy.erase import remove_accepted_events, remove_feed_items
from broker.records import AuditAction
from broker.runtime.state import AppState
from broker.subjects.personnummer import Personnummer
from consumers.models import FeedItem


@dataclass(frozen=True)
class Shredded:
    feed_items: int
    accepted_events: int
    keys_destroyed: int


async def shred_subject(state: AppState, caller: Caller, pn: Personnummer, reason: str) -> Shredded:
    # Under every pseudonym key still held: records made before a pseudonym key rotation too.
    pseudonyms = state.keys.pseudonymiser.candidates(pn)
    async with transaction(state.sessions) as session:
        items = list(
            (
                await session.execute(
                    select(FeedItem.item_id).where(FeedItem.subject_pseudonym.in_(pseudonyms))
                )
            ).scalars()
        )
        events = [
            (row[0], row[1])
            for row in await session.execute(
                select(AcceptedEvent.source_org, AcceptedEvent.event_id).where(
                    AcceptedEvent.subject_pseudonym.in_(pseudonyms)
                )
            )
        ]
        await remove_feed_items(session, items)
        await remove_accepted_events(session, events)
        destroyed = await state.subject_keys.shred(session, pseudonyms)
        done = Shredded(len(items), len(events), len(destroyed))
        # In Kafka before the commit: no erasure without its record.
        await state.emit_audit(
            record(
                action=AuditAction.SUBJECT_SHRED,
                outcome="ok",
                actor_org=caller.org,
                actor_client=caller.client_id,
                subject_pseudonym=pseudonyms[0],
                reasons=[
                    f"reason:{reason}",
                    f"feed_items:{done.feed_items}",
                    f"accepted_events:{done.accepted_events}",
                    f"keys_destroyed:{done.keys_destroyed}",
                ],
            )
        )
    return done
