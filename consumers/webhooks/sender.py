"""Push each organisation's new feed items to its webhook, signed, retried with backoff.

Each poll, with all state in SQL (``webhook_attempts``):

1. queue: the feed items of every organisation with a webhook past its ``after_seq`` become
   pending pushes (one row per item) and ``after_seq`` moves on, in one transaction. Feed
   ``seq`` order is commit order (:func:`consumers.models.lock_feed`), so no item is passed over.
2. push: due pushes are claimed (their ``due_at`` moved past the request timeout, so another
   sender leaves them alone), audited as reads (fail closed: no record, no push), POSTed, and
   marked delivered on a 2xx answer; otherwise tried again after a backoff that doubles from
   ``webhook_backoff_min_s`` to ``webhook_backoff_max_s``, and given up after
   ``webhook_max_attempts`` (the item stays in the feed).

At least once: a crash between the POST and its bookkeeping sends the item again, with the same
``Samsyn-Delivery-Id``. Items are pushed independently, not in feed order; the feed has the order.
Redirects are not followed (the URL was checked, where it redirects to was not).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from datetime import timedelta
from functools import partial
from typing import Any, cast

import httpx
import structlog
from prometheus_client import Counter
from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broker.config import Settings
from broker.infra.db import transaction, utcnow
from broker.infra.kafka import AUDIT
from broker.infra.kafka_writer import KafkaWriter
from broker.privacy.keyring import SubjectKeys
from broker.records import AuditAction
from consumers.models import FeedItem
from consumers.reads import AuditSink, item_view, opened, record_reads
from consumers.webhooks.models import Webhook, WebhookAttempt
from consumers.webhooks.service import DELIVERY_ID_HEADER, SIGNATURE_HEADER, sign

log = structlog.get_logger("samsyn.webhooks")
BATCH = 50
PUSHES = Counter("samsyn_webhook_pushes_total", "Webhook POSTs", ["outcome"])


def retry_delay(attempts: int, *, min_s: float, max_s: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: ``min_s`` doubling, up to
    10% later so that retries spread out, never more than ``max_s``."""
    delay = min_s * 2.0 ** min(attempts - 1, 30)
    jitter = random.uniform(1.0, 1.1)  # noqa: S311  (spreads retries out; not a secret)
    return min(max_s, delay * jitter)


class WebhookSender:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], keys: SubjectKeys
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.keys = keys
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        """Queue and push until stopped; after a failure wait, doubling up to 10 s."""
        kafka_writer = KafkaWriter(self.settings)
        kafka_writer.start()
        emit_audit = partial(kafka_writer.send, AUDIT)
        timeout = httpx.Timeout(self.settings.webhook_timeout_s)
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
                backoff = 0.5
                while not self.stopping.is_set():
                    try:
                        busy = await self.poll(client, emit_audit)
                        backoff = 0.5
                    except asyncio.CancelledError:
                        raise
                    except Exception as err:
                        log.warning("webhook sender failed", error=f"{type(err).__name__}: {err}")
                        await self._sleep(backoff)
                        backoff = min(backoff * 2, 10.0)
                        continue
                    if not busy:
                        await self._sleep(self.settings.webhook_poll_s)
        finally:
            await kafka_writer.stop()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    async def poll(self, client: httpx.AsyncClient, emit_audit: AuditSink) -> bool:
        """One round of queueing and pushing; True if there was anything to do."""
        queued = await self._queue()
        due = await self._claim()
        results = await asyncio.gather(
            *(self._push(client, emit_audit, item_id) for item_id in due), return_exceptions=True
        )
        for item_id, result in zip(due, results, strict=True):
            if isinstance(result, Exception):
                # Claimed but not pushed: it is due again when the claim runs out.
                log.warning("webhook push failed", item=item_id, error=repr(result))
        return queued > 0 or bool(due)

    async def _queue(self) -> int:
        queued = 0
        now = utcnow()
        async with transaction(self.sessions) as session:
            hooks = (await session.execute(select(Webhook.org_id, Webhook.after_seq))).all()
            for org, after in hooks:
                rows = await session.execute(
                    select(FeedItem.item_id, FeedItem.seq)
                    .where(FeedItem.org_id == org, FeedItem.seq > after)
                    .order_by(FeedItem.seq)
                    .limit(BATCH)
                )
                items = rows.all()
                if not items:
                    continue
                moved = await session.execute(
                    update(Webhook)
                    .where(Webhook.org_id == org, Webhook.after_seq == after)
                    .values(after_seq=items[-1].seq)
                    .execution_options(synchronize_session=False)
                )
                if cast(CursorResult[Any], moved).rowcount != 1:
                    continue  # another sender queued them, or the webhook is gone
                session.add_all(
                    WebhookAttempt(item_id=i.item_id, org_id=org, seq=i.seq, attempts=0, due_at=now)
                    for i in items
                )
                queued += len(items)
        return queued

    async def _claim(self) -> list[str]:
        now = utcnow()
        pending = (WebhookAttempt.delivered_at.is_(None), WebhookAttempt.failed_at.is_(None))
        async with transaction(self.sessions) as session:
            due = await session.execute(
                select(WebhookAttempt.item_id)
                .where(*pending, WebhookAttempt.due_at <= now)
                .order_by(WebhookAttempt.due_at)
                .limit(BATCH)
            )
            ids = list(due.scalars())
            if not ids:
                return []
            # A claim outlasts one request with room to spare; a sender that dies holding it
            # leaves the push due again once it runs out.
            lease = timedelta(seconds=2 * self.settings.webhook_timeout_s + 30)
            claimed = await session.execute(
                update(WebhookAttempt)
                .where(WebhookAttempt.item_id.in_(ids), *pending, WebhookAttempt.due_at <= now)
                .values(due_at=now + lease)
                .returning(WebhookAttempt.item_id)
                .execution_options(synchronize_session=False)
            )
            return list(claimed.scalars())

    async def _push(self, client: httpx.AsyncClient, emit_audit: AuditSink, item_id: str) -> None:
        async with transaction(self.sessions) as session:
            attempt = await session.get(WebhookAttempt, item_id)
            hook = await session.get(Webhook, attempt.org_id) if attempt else None
            item = await session.scalar(select(FeedItem).where(FeedItem.item_id == item_id))
            if attempt is None or hook is None or item is None:
                return  # the webhook was removed meanwhile
            shown = await opened(self.keys, [item])
            if not shown:
                # The child was erased (its key destroyed): there is nothing left to push.
                attempt.failed_at, attempt.last_error = utcnow(), "erased"
                PUSHES.labels("erased").inc()
                return
            await record_reads(
                emit_audit,
                session,
                shown,
                reader_org=hook.org_id,
                reader_client=None,
                action=AuditAction.WEBHOOK_PUSH,
            )
            url, secret, number = hook.url, hook.secret, attempt.attempts + 1
        body = json.dumps(item_view(shown[0]), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            DELIVERY_ID_HEADER: item_id,
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        }
        status: int | None = None
        try:
            # Streamed and not read: the answer's status is all that counts, whatever its size.
            async with client.stream("POST", url, content=body, headers=headers) as resp:
                status = resp.status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"[:300]
        await self._record(item_id, number, status, error)

    async def _record(
        self, item_id: str, number: int, status: int | None, error: str | None
    ) -> None:
        now = utcnow()
        async with transaction(self.sessions) as session:
            attempt = await session.get(WebhookAttempt, item_id)
            if attempt is None:
                return
            attempt.attempts, attempt.last_status, attempt.last_error = number, status, error
            if error is None:
                attempt.delivered_at = now
                outcome = "delivered"
            elif number >= self.settings.webhook_max_attempts:
                attempt.failed_at = now
                outcome = "failed"
            else:
                delay = retry_delay(
                    number,
                    min_s=self.settings.webhook_backoff_min_s,
                    max_s=self.settings.webhook_backoff_max_s,
                )
                attempt.due_at = now + timedelta(seconds=delay)
                outcome = "retry"
        PUSHES.labels(outcome).inc()
        if outcome != "delivered":
            log.info(
                "webhook push not accepted",
                org=attempt.org_id,
                item=item_id,
                attempt=number,
                error=error,
                outcome=outcome,
            )
