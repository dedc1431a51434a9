"""Register, show and remove an organisation's webhook; sign what is pushed to it.

A push is ``POST <url>`` with the feed item as JSON (the shape ``GET /v1/feed`` gives) and:

- ``Samsyn-Delivery-Id``: the item's ``delivery_id``, the same on every retry of that item, so a
  receiver drops repeats (delivery is at least once);
- ``Samsyn-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``: the
  receiver recomputes it over the raw body with its secret and refuses a stale ``t``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.config import Environment
from broker.infra.db import utcnow
from broker.registry.service import get_organisation
from broker.web.errors import InvalidInput, NotFound
from consumers.models import FeedItem
from consumers.webhooks.models import Webhook, WebhookAttempt

SIGNATURE_HEADER = "Samsyn-Signature"
DELIVERY_ID_HEADER = "Samsyn-Delivery-Id"
# Where plain http and the local machine are acceptable receivers.
LOCAL_ENVIRONMENTS = ("development", "test")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Samsyn-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def check_url(url: str, *, env: Environment) -> str:
    """The URL, or :class:`InvalidInput` saying why Samsyn will not push to it.

    Outside development and test: https only, and not to the broker's own machine (loopback,
    link-local, unspecified or multicast addresses, ``localhost``), where OPA and other local
    services listen. Private networks stay allowed: agency systems live on them. Credentials
    in the URL are refused: the signature authenticates Samsyn, and the URL is shown back.
    """
    parts = urlsplit(url)
    local = env in LOCAL_ENVIRONMENTS
    problem = None
    if parts.scheme not in (("https", "http") if local else ("https",)):
        problem = "must be an https URL"
    elif not parts.hostname:
        problem = "has no host"
    elif parts.username is not None or parts.password is not None:
        problem = "must not carry credentials"
    elif parts.fragment:
        problem = "must not have a fragment"
    elif not local and _is_local_host(parts.hostname):
        problem = "must not point at the broker's own machine"
    if problem:
        raise InvalidInput(f"/url: {problem}", errors=[{"pointer": "/url", "detail": problem}])
    return url


def _is_local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast


@dataclass(frozen=True)
class Registered:
    webhook: Webhook
    created: bool


async def register(session: AsyncSession, *, org: str, url: str) -> Registered:
    """Point the organisation's webhook at ``url`` with a new secret.

    A first registration pushes the items that reach the feed from now on; a re-registration
    keeps the queue (items not yet delivered go to the new URL, signed with the new secret).
    """
    await get_organisation(session, org)
    now = utcnow()
    hook = await session.get(Webhook, org)
    if hook is not None:
        hook.url, hook.secret, hook.updated_at = url, secrets.token_urlsafe(32), now
        return Registered(hook, created=False)
    last = await session.execute(select(func.max(FeedItem.seq)).where(FeedItem.org_id == org))
    hook = Webhook(
        org_id=org,
        url=url,
        secret=secrets.token_urlsafe(32),
        after_seq=last.scalar_one() or 0,
        created_at=now,
        updated_at=now,
    )
    session.add(hook)
    return Registered(hook, created=True)


@dataclass(frozen=True)
class Status:
    webhook: Webhook
    pending: int
    failed: int


async def status(session: AsyncSession, *, org: str) -> Status:
    """The organisation's webhook and how many pushes wait or have been given up."""
    hook = await session.get(Webhook, org)
    if hook is None:
        raise NotFound("your organisation has no webhook")
    counts = await session.execute(
        select(
            func.count().filter(
                WebhookAttempt.delivered_at.is_(None), WebhookAttempt.failed_at.is_(None)
            ),
            func.count().filter(WebhookAttempt.failed_at.is_not(None)),
        ).where(WebhookAttempt.org_id == org)
    )
    pending, failed = counts.one()
    return Status(hook, pending=pending, failed=failed)


async def remove(session: AsyncSession, *, org: str) -> Webhook:
    """Stop pushing: the webhook and every push still waiting go (the feed keeps the items)."""
    hook = await session.get(Webhook, org)
    if hook is None:
        raise NotFound("your organisation has no webhook")
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.org_id == org))
    await session.delete(hook)
    return hook
