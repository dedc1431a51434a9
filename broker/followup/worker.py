"""The follow-up counter: reads accepted events (``events.v1``) and the audit trail
(``audit.v1``: decisions, consents, nödöppningar) and adds them to the follow-up store.

At least once: a batch is applied in one SQL transaction, then its offsets are committed. A
batch applied but not committed is read again; each child's ledger remembers the facts it has
counted, so the second reading counts nothing twice.
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.followup import store
from broker.followup.store import LedgerKeys
from broker.infra import kafka
from broker.runtime.supervise import keep_running

log = structlog.get_logger("samsyn.followup")
GROUP = "samsyn-followup"


class FollowupCounter:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], keys: LedgerKeys
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.keys = keys
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        await keep_running(self._session, self.stopping, log, "followup")

    async def _session(self) -> None:
        consumer = kafka.consumer(self.settings, kafka.EVENTS, kafka.AUDIT, group_id=GROUP)
        await consumer.start()
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                records = sorted(
                    (r for rs in batch.values() for r in rs), key=lambda r: r.timestamp
                )
                if not records:
                    continue
                async with self.sessions() as session, session.begin():
                    await store.apply(
                        session,
                        self.keys,
                        [
                            ("event" if r.topic.endswith(kafka.EVENTS) else "audit", r.value)
                            for r in records
                            if isinstance(r.value, dict)
                        ],
                    )
                    await store.forget_expired(session)
                await consumer.commit()
        finally:
            await consumer.stop()
