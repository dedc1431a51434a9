"""Settings, one class per concern, read from ``SAMSYN_*`` environment variables.

Secrets have no defaults that would work in production: with ``env=production`` a missing key,
a placeholder or a too short secret is an error at start-up instead of a silently generated
or guessable one.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from functools import lru_cache
from typing import Literal, get_args

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]
# The background workers a process may run (broker/runtime/workers.py).
WorkerName = Literal["router", "materializer", "sealer", "webhooks", "gallring", "followup"]
# The read side: what turns the topics into the feeds and the audit chain. It runs in a process
# of its own by default (`samsyn worker materializer sealer`), not on the API's event loop.
READ_SIDE: tuple[WorkerName, ...] = ("materializer", "sealer")
# The workers that ask OPA (a process without one needs no OPA to be ready).
DECIDING: tuple[WorkerName, ...] = ("router",)


# Random secrets Samsyn checks (the console's session key, the first admin client's secret):
# at least this many characters, what `secrets.token_urlsafe(24)` gives.
MIN_SECRET_CHARS = 32
# Pseudonym HMAC keys: at least this many bytes once base64-decoded.
MIN_PSEUDONYM_KEY_BYTES = 32
# What the example manifests and templates put where a secret goes (deploy/k8s/secrets.yaml
# says REPLACE-ME), compared without case and punctuation.
PLACEHOLDERS = ("replaceme", "replacewith", "changeme", "changethis", "placeholder", "example")


def weak_secret(name: str, value: str, min_length: int = 0) -> str | None:
    """Why ``value`` is not a secret fit for production, or None. Never quotes the value."""
    plain = "".join(c for c in value.lower() if c.isalnum())
    if not plain or plain.startswith(PLACEHOLDERS) or plain in ("secret", "password"):
        return f"{name}: a placeholder, not a secret"
    if len(value) < min_length:
        return f"{name}: shorter than {min_length} characters"
    return None


def weak_pseudonym_key(name: str, value: str) -> str | None:
    """Why a pseudonym key is not fit for production, or None: read as broker/infra/keys.py
    reads it (base64), it must hold at least MIN_PSEUDONYM_KEY_BYTES."""
    try:
        key = base64.b64decode(value)
    except binascii.Error:
        return f"{name}: not base64"
    if len(key) < MIN_PSEUDONYM_KEY_BYTES:
        return f"{name}: shorter than {MIN_PSEUDONYM_KEY_BYTES} bytes"
    return None


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting's error never prints the environment's secrets.
    model_config = SettingsConfigDict(
        env_prefix="SAMSYN_", extra="ignore", hide_input_in_errors=True
    )

    env: Environment = "development"
    database_url: str = "sqlite+aiosqlite:///var/samsyn.db"
    # Connections kept open per process (PostgreSQL). A publish holds one until Kafka has
    # acknowledged the event, so this should cover the concurrent publishers; beyond it, up to
    # as many again are opened and closed per request, which costs far more than the request.
    database_pool_size: int = Field(default=20, ge=1)
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    # Replicas of each topic `samsyn topics` creates: 1 on a single local node, 3 on a
    # production cluster (with min.insync.replicas=2 on the brokers).
    kafka_replication: int = Field(default=1, ge=1)
    topic_prefix: str = ""
    opa_url: str = "http://127.0.0.1:8181"
    opa_timeout_s: float = 2.0
    # How long the API remembers an admission verdict for the same facts (broker/policy/memo.py:
    # the router decides every event anew; 0 asks OPA for every publish).
    admission_memo_s: float = Field(default=2.0, ge=0, le=60)

    # Which background workers `samsyn serve` runs beside the HTTP API: by default all but the
    # read side (READ_SIDE), which `samsyn worker materializer sealer` runs. Listing them here
    # runs them on the API's event loop instead (one process, as before: fine for a small
    # pilot, but the API then shares its CPU and loop with every feed insert and seal).
    workers: list[WorkerName] = Field(
        default_factory=lambda: [w for w in get_args(WorkerName) if w not in READ_SIDE]
    )
    # Each router instance needs its own instance name: it is part of the Kafka transactional id,
    # and a restarted instance with the same name fences its predecessor's open transaction.
    # It is also the router's static member name in its consumer group (group.instance.id): a
    # restarted router takes its partitions back at once instead of after a rebalance.
    router_instance: str = "router-1"
    # A stable name for this process's materializer and sealer in their consumer groups (static
    # membership, as the router's): set it only where the name survives a restart and no other
    # process has it (a StatefulSet's pod name). A static member does not leave its group when
    # it stops, so a name that never comes back holds its partitions for a session timeout.
    worker_instance: str | None = None
    # How long the routers' consumer group waits for a router that stopped answering before
    # its partitions go to the others (heartbeats every fifth of it). A restarted router takes
    # its partitions back at once whatever this is (static membership); this bounds how long
    # the partitions of one gone for good wait. Brokers refuse a session timeout under their
    # group.min.session.timeout.ms (6000 by default): theirs must be set to 1000 (README,
    # Reliability). An event loop that stalls longer than this costs a needless rebalance.
    router_session_timeout_ms: int = Field(default=1_500, ge=1_000)
    router_batch_max: int = 500
    # How long the router gathers events for a batch after the first one arrived (Kafka's
    # linger.ms, on the consuming side), unless router_batch_max come sooner. Every batch costs
    # an OPA query, a Kafka transaction and the read side's transactions whatever its size; under
    # steady load small batches spend the cores on those instead of on events.
    # 50 ms: through the API, one event per request, it carried 367 and 503 events/s against 276
    # and 304 without, at the same latency at 100/s (docs/bench/journal.md, session 8).
    router_linger_ms: int = Field(default=50, ge=0, le=1_000)
    # How long a transaction of a router that died without a successor of the same name stays
    # open before Kafka aborts it. Consumers reading read_committed stop at an open transaction,
    # so this bounds how long the deliveries and audit partitions it touched are held up. A
    # transaction holds only the produce and the offset commit (OPA is asked before it begins).
    router_transaction_timeout_ms: int = Field(default=10_000, ge=1_000)
    # A worker's Kafka session that holds work (a batch in hand, or its group's lag above zero)
    # and makes no progress for this long is torn down and started again with new clients
    # (broker/runtime/supervise.py); the worker's /readyz check is down meanwhile.
    worker_stall_s: float = Field(default=30.0, gt=0)
    # Every Kafka call a worker waits on to start a session or to commit work (a router's
    # transaction, a consumer's offset commit) must finish within this, or the session fails and
    # starts again: a client whose coordinator went away may otherwise wait for it for ever
    # (aiokafka issues #1134, #1145).
    kafka_deadline_s: float = Field(default=15.0, gt=0)
    # Consumer lag (samsyn_consumer_lag) is sampled this often wherever a router runs.
    lag_interval_s: float = Field(default=15.0, gt=0)
    # A worker-only process (`samsyn worker`) has no HTTP API: when a port is set it serves
    # /healthz, /readyz and /metrics there (the API process serves them on its own port).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None

    # Webhook pushes (consumers/webhooks): a failed POST is retried after backoff_min_s, doubling
    # up to backoff_max_s, until max_attempts; each POST waits at most timeout_s for an answer.
    webhook_max_attempts: int = Field(default=12, ge=1)
    webhook_backoff_min_s: float = Field(default=1.0, gt=0)
    webhook_backoff_max_s: float = Field(default=300.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_poll_s: float = Field(default=0.5, gt=0)

    issuer: str = "http://127.0.0.1:8000"
    audience: str = "samsyn"
    token_ttl_s: int = 900
    # External OpenID Connect issuer mode: tokens signed by the municipality's IdP.
    oidc_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_org_claim: str = "org"
    oidc_audience: str | None = None

    admin_client_id: str | None = None
    admin_client_secret: SecretStr | None = None

    # Key material: base64/PEM from settings in production; generated at first start and kept in
    # the database in development and test.
    jwt_private_key: SecretStr | None = None
    # The key id ("kid") of jwt_private_key in tokens and in /.well-known/jwks.json: give every
    # new signing key a new id, so that tokens name the key that verifies them.
    jwt_kid: str = "jwt-settings"
    # Public keys (PEM) by kid that also verify tokens and are published in the JWKS, for a
    # rotation without downtime (docs/operations.md): first the NEXT key, before any instance
    # signs with it; then the PREVIOUS key, until the last token it signed has expired.
    jwt_previous_public_keys: dict[str, str] = Field(default_factory=dict)
    pseudonym_keys: dict[str, SecretStr] = Field(default_factory=dict)
    pseudonym_current_kid: str | None = None
    audit_signing_key: SecretStr | None = None
    # The follow-up's key (base64, 32 bytes): seals each child's follow-up ledger and makes the
    # one-way tokens that find it (broker/followup/store.py).
    followup_key: SecretStr | None = None
    # Checkpoints carry the key id that signed them. Rotating the audit key: give the new key a
    # new id and list the old public key here (id -> PEM), so older checkpoints keep verifying.
    audit_signing_kid: str = "audit-1"
    audit_previous_public_keys: dict[str, str] = Field(default_factory=dict)

    # Key-encryption keys (KEKs) by id, base64 of 32 bytes each: they wrap every child's data
    # key (broker/privacy, docs/privacy.md). Several ids during a rotation: new data keys are
    # wrapped with kek_current_kid (default: the last id in sort order), `samsyn rotate-kek`
    # re-wraps the others, then the old id can go.
    kek_keys: dict[str, SecretStr] = Field(default_factory=dict)
    kek_current_kid: str | None = None
    # Unwrapped data keys kept in memory per process (least recently used go first), and for how
    # long: a key shredded by another process stays usable here at most this long.
    subject_key_cache_size: int = Field(default=10_000, ge=1)
    subject_key_cache_ttl_s: float = Field(default=60.0, gt=0)
    # How long keys.v1 keeps the tombstone of a destroyed key (a pseudonym, no key): longer than
    # the oldest backup that may be restored, which a tombstone destroys the key in again
    # (broker/privacy/keylog.py). Read by `samsyn topics` when it creates the topic.
    keys_tombstone_retention: timedelta = timedelta(days=90)

    # Gallring: how long each kind of information stays in the read model (docs/privacy.md).
    # ISO 8601 durations ("P30D", "PT12H"). A delivery goes at the first of its deadlines.
    gallring_after_read: timedelta = timedelta(days=30)  # since its first read (feed or push)
    gallring_unread: timedelta = timedelta(days=365)  # since delivery, read or not
    gallring_after_consent: timedelta = timedelta(days=30)  # since its consent ended
    gallring_report_after_read: timedelta = timedelta(days=7)  # a mandatory report, once read
    gallring_notice: timedelta = timedelta(days=90)  # notices, since made
    gallring_accepted_event: timedelta = timedelta(days=365)  # the ledger's envelope and route
    # A data key made this recently is kept even with nothing live yet: ingest makes the key
    # just before it commits the event that uses it.
    gallring_key_grace: timedelta = timedelta(hours=1)
    gallring_interval_s: float = Field(default=3600.0, gt=0)

    audit_checkpoint_every: int = 100
    audit_checkpoint_seconds: float = 5.0
    # Years a sealed record stays in the live chain; an older, checkpointed segment may then be
    # archived (the console's verify page names it; docs/audit.md says how).
    audit_retention_years: int = 5
    # Log follow-up (the console's review queue and flags): an open review item older than this
    # many days is overdue (highlighted, and counted in samsyn_audit_reviews_overdue); office
    # hours are [start, end) o'clock on weekdays, Swedish local time.
    audit_review_overdue_days: int = Field(default=14, ge=1)
    audit_office_hours: tuple[int, int] = (7, 18)

    # The auditors' web console (/audit/): the key that signs its session cookies (required in
    # production; derived from the token-signing key otherwise), how long a login lasts, and an
    # OpenID Connect login (authorization code + PKCE), offered when the three OIDC_* are set.
    console_session_secret: SecretStr | None = None
    console_session_s: int = 8 * 3600
    console_oidc_discovery_url: str | None = None
    console_oidc_client_id: str | None = None
    console_oidc_client_secret: SecretStr | None = None
    console_oidc_scope: str = "openid profile"
    console_oidc_org_claim: str = "org"

    max_body_bytes: int = 64 * 1024
    # A batch (application/cloudevents-batch+json): each event within max_body_bytes as well.
    max_batch_events: int = Field(default=100, ge=1)
    max_batch_bytes: int = Field(default=1024 * 1024, ge=1)

    # Per-client rate limits (per API process): token requests and event publishes.
    rate_token_per_s: float = Field(default=2.0, gt=0)
    rate_token_burst: int = Field(default=30, ge=1)
    rate_publish_per_s: float = Field(default=2000.0, gt=0)
    rate_publish_burst: int = Field(default=4000, ge=1)

    @model_validator(mode="after")
    def _office_hours_within_a_day(self) -> Settings:
        start, end = self.audit_office_hours
        if not 0 <= start < end <= 24:
            raise ValueError("SAMSYN_AUDIT_OFFICE_HOURS: [start, end] with 0 <= start < end <= 24")
        return self

    @model_validator(mode="after")
    def _production_needs_keys(self) -> Settings:
        """Production starts only with real secrets: the keys present, none of them a
        placeholder from the example manifests, the random ones long enough to guess at no
        better than a key. Development and test generate what is missing (broker/infra/keys.py).
        """
        if self.env != "production":
            return self
        missing = [
            name
            for name, value in (
                ("SAMSYN_JWT_PRIVATE_KEY", self.jwt_private_key),
                ("SAMSYN_PSEUDONYM_KEYS", self.pseudonym_keys or None),
                ("SAMSYN_KEK_KEYS", self.kek_keys or None),
                ("SAMSYN_AUDIT_SIGNING_KEY", self.audit_signing_key),
                ("SAMSYN_FOLLOWUP_KEY", self.followup_key),
                ("SAMSYN_CONSOLE_SESSION_SECRET", self.console_session_secret),
            )
            if value is None
        ]
        if missing:
            raise ValueError(f"production needs {', '.join(missing)}")
        problems = [
            problem
            for name, secret, min_length in self._secrets()
            if (problem := weak_secret(name, secret, min_length)) is not None
        ]
        problems += [
            problem
            for kid, key in sorted(self.pseudonym_keys.items())
            if (
                problem := weak_pseudonym_key(
                    f"SAMSYN_PSEUDONYM_KEYS[{kid!r}]", key.get_secret_value()
                )
            )
            is not None
        ]
        if self.followup_key is not None:
            # Read like a pseudonym key (base64, at least 32 bytes): it seeds the same HMAC.
            weak = weak_pseudonym_key("SAMSYN_FOLLOWUP_KEY", self.followup_key.get_secret_value())
            problems += [weak] if weak else []
        if problems:
            raise ValueError("production refuses " + "; ".join(problems))
        return self

    def _secrets(self) -> list[tuple[str, str, int]]:
        """(variable, value, shortest length allowed) of every secret that is set. Keys and
        passwords made elsewhere (PEM keys, the Kafka and IdP passwords) are held to no length
        here, only to not being a placeholder."""
        found = [
            (name, value.get_secret_value(), min_length)
            for name, value, min_length in (
                ("SAMSYN_JWT_PRIVATE_KEY", self.jwt_private_key, 0),
                ("SAMSYN_AUDIT_SIGNING_KEY", self.audit_signing_key, 0),
                ("SAMSYN_CONSOLE_SESSION_SECRET", self.console_session_secret, MIN_SECRET_CHARS),
                ("SAMSYN_ADMIN_CLIENT_SECRET", self.admin_client_secret, MIN_SECRET_CHARS),
                ("SAMSYN_KAFKA_SASL_PASSWORD", self.kafka_sasl_password, 0),
                ("SAMSYN_CONSOLE_OIDC_CLIENT_SECRET", self.console_oidc_client_secret, 0),
            )
            if value is not None
        ]
        found += [
            (f"SAMSYN_PSEUDONYM_KEYS[{kid!r}]", key.get_secret_value(), 0)
            for kid, key in sorted(self.pseudonym_keys.items())
        ]
        found += [
            (f"SAMSYN_KEK_KEYS[{kid!r}]", key.get_secret_value(), 0)
            for kid, key in sorted(self.kek_keys.items())
        ]
        return found

    @property
    def console_oidc_enabled(self) -> bool:
        return bool(
            self.console_oidc_discovery_url
            and self.console_oidc_client_id
            and self.console_oidc_client_secret
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
