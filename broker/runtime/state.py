"""Everything a process owns for its lifetime, created in the app's lifespan, never at import."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request
from joserfc.jwk import KeySet
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from broker.auth.tokens import CheckedSignatures
from broker.config import Settings
from broker.contracts import Contracts
from broker.infra.kafka import AUDIT
from broker.infra.kafka_writer import KafkaWriter
from broker.infra.keys import Keys
from broker.policy.client import PolicyClient
from broker.policy.memo import AdmissionMemo
from broker.privacy.keyring import SubjectKeys
from broker.records import AuditEntry
from broker.registry.models import ApiClient, Organisation
from broker.runtime.coalesce import Coalesced
from broker.web.ratelimit import RateLimiter

if TYPE_CHECKING:
    from broker.ingest.service import Accepted, Prepared
    from broker.web.errors import Problem

CLIENT_CACHE_S = 5.0


@dataclass(frozen=True)
class OrgFacts:
    """What ingest needs of an organisation. Organisations are created and never changed or
    removed, so these facts are kept for the process's lifetime once read."""

    id: str
    kind: str
    municipality: str | None


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keys: Keys
    subject_keys: SubjectKeys
    contracts: Contracts
    kafka_writer: KafkaWriter
    policy: PolicyClient
    local_keyset: KeySet
    oidc_keyset: KeySet | None = None
    # /readyz checks of the workers this process runs (broker.runtime.readiness.worker_checks).
    worker_checks: dict[str, Callable[[], Awaitable[bool]]] = field(default_factory=dict)
    token_limiter: RateLimiter = field(init=False)
    publish_limiter: RateLimiter = field(init=False)
    admission_memo: AdmissionMemo = field(init=False)
    # Bearer tokens whose signature has been verified (broker.auth.tokens.CheckedSignatures).
    checked_tokens: CheckedSignatures = field(default_factory=CheckedSignatures)
    _client_seen: dict[str, float] = field(default_factory=dict)
    _orgs: dict[str, OrgFacts] = field(default_factory=dict)
    # Municipalities found to have social services (broker.ingest.service: where a report can
    # go). Organisations are never removed or moved, so a found one stays found.
    social_services_known: set[str] = field(default_factory=set)
    # One-event publishes written together (broker.ingest.service.grouped_publishes); set by
    # the app's lifespan, which knows the ingest service (this module may not import it).
    publishes: Coalesced[Prepared, Accepted | Problem] = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.token_limiter = RateLimiter(s.rate_token_per_s, s.rate_token_burst)
        self.publish_limiter = RateLimiter(s.rate_publish_per_s, s.rate_publish_burst)
        self.admission_memo = AdmissionMemo(s.admission_memo_s)

    async def client_is_active(self, client_id: str) -> bool:
        """True for an existing, enabled client; positive answers are cached for a few seconds."""
        seen = self._client_seen.get(client_id)
        if seen is not None and time.monotonic() - seen < CLIENT_CACHE_S:
            return True
        async with self.sessions() as session:
            row = await session.get(ApiClient, client_id)
        if row is None or row.disabled_at is not None:
            self._client_seen.pop(client_id, None)
            return False
        self._client_seen[client_id] = time.monotonic()
        return True

    async def organisation(self, org_id: str) -> OrgFacts | None:
        """The organisation's facts; a registered one is read from the database once (an
        unknown id is asked again each time: it may be registered later)."""
        known = self._orgs.get(org_id)
        if known is not None:
            return known
        async with self.sessions() as session:
            row = await session.get(Organisation, org_id)
        if row is None:
            return None
        facts = OrgFacts(row.id, row.kind, row.municipality)
        self._orgs[org_id] = facts
        return facts

    def forget_client(self, client_id: str) -> None:
        self._client_seen.pop(client_id, None)

    async def emit_audit(self, *records: AuditEntry) -> None:
        """Put audit records durably in ``audit.v1`` before the caller answers (fail closed)."""
        await self.kafka_writer.send(AUDIT, *records)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.samsyn
    return state
