"""Kafka clients built from settings (plaintext locally; TLS and SASL/SCRAM in production).

Records are JSON. Topic names: ``events.v1`` (key: child pseudonym), ``registry.v1`` (key: child
pseudonym), ``deliveries.v1`` (key: recipient organisation), ``audit.v1`` (one partition, one
ordered chain).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from broker.config import Settings

EVENTS = "events.v1"
REGISTRY = "registry.v1"
DELIVERIES = "deliveries.v1"
AUDIT = "audit.v1"
# Events the policy could not decide (a fault for that event alone, after retries): parked here
# for an operator, so that the rest of their partition is routed.
DEAD_LETTERS = "events.dlq.v1"


def canonical_json(value: dict[str, Any]) -> bytes:
    """Compact JSON with sorted keys by the standard library: what ingest hashes (the
    idempotency ledger keeps these hashes, so their bytes must not change)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def encode(value: dict[str, Any]) -> bytes:
    """A record's bytes: compact JSON with sorted keys (the same bytes as ``canonical_json`` for
    what Samsyn writes) by orjson, about ten times faster; the standard library takes what
    orjson refuses (an integer beyond 64 bits, a key that is not a string)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return canonical_json(value)


def decode(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # e.g. NaN, which the standard library wrote and reads


def connection(settings: Settings) -> dict[str, Any]:
    """The connection arguments every aiokafka client of this deployment shares."""
    args: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        args["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_security_protocol.startswith("SASL"):
        args["sasl_mechanism"] = settings.kafka_sasl_mechanism or "SCRAM-SHA-512"
        args["sasl_plain_username"] = settings.kafka_sasl_username
        args["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return args


def producer(settings: Settings, **extra: Any) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (acks=all)."""
    return AIOKafkaProducer(
        **connection(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=1,
        value_serializer=encode,
        key_serializer=lambda k: k.encode() if isinstance(k, str) else k,
        **extra,
    )


def consumer(settings: Settings, *topics: str, group_id: str, **extra: Any) -> AIOKafkaConsumer:
    """A consumer that sees only committed transactions and commits offsets by hand."""
    return AIOKafkaConsumer(
        *(settings.topic(t) for t in topics),
        **connection(settings),
        group_id=settings.topic(group_id),  # the prefix isolates deployments sharing Kafka
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        value_deserializer=decode,
        **extra,
    )


async def metadata_ok(settings: Settings, timeout_s: float = 2.0) -> bool:
    admin = AIOKafkaAdminClient(**connection(settings), request_timeout_ms=int(timeout_s * 1000))
    try:
        await admin.start()
        topics = await admin.list_topics()
        return settings.topic(EVENTS) in topics
    finally:
        await admin.close()
