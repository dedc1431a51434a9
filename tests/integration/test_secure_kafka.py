"""Kafka locked down (deploy/local/kafka-secure.sh): Samsyn works over SASL_SSL with SCRAM-SHA-512
as the principal ``samsyn``; a client without valid credentials is refused; another principal
(an organisation's) can neither read nor list Samsyn's topics, only its own per-org prefix."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.helpers import create_ssl_context

from tests.kit import REPO, Samsyn, audit_for, child, start_samsyn

# stack_security: independent of the database, so the PostgreSQL leg of `make test` skips it.
pytestmark = [pytest.mark.integration, pytest.mark.stack_security]

SCRIPT = REPO / "deploy/local/kafka-secure.sh"


@pytest.fixture(scope="module")
def secure() -> Iterator[dict[str, str]]:
    """The secured node (started when it is not up yet) and its client settings: bootstrap, CA,
    the ``samsyn`` user and one organisation's user with generated passwords. A node started
    here is stopped after the module: it is optional, and left running it kept a JVM (about
    half a GB) and a little CPU from whatever ran next, a benchmark included."""
    was_up = subprocess.run([str(SCRIPT), "status"], capture_output=True).returncode == 0
    subprocess.run([str(SCRIPT), "start"], check=True)
    out = subprocess.run([str(SCRIPT), "env"], check=True, capture_output=True, text=True).stdout
    yield dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if not was_up:
        subprocess.run([str(SCRIPT), "stop"], check=True)


def client_args(
    secure: dict[str, str],
    user: str | None = None,
    password: str | None = None,
    protocol: str = "SASL_SSL",
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "bootstrap_servers": secure["SAMSYN_KAFKA_SECURE_BOOTSTRAP"],
        "security_protocol": protocol,
        "request_timeout_ms": 5000,
    }
    if protocol in ("SSL", "SASL_SSL"):
        args["ssl_context"] = create_ssl_context(cafile=secure["SAMSYN_KAFKA_SECURE_CAFILE"])
    if user is not None:
        args.update(
            sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user, sasl_plain_password=password
        )
    return args


def samsyn_args(secure: dict[str, str]) -> dict[str, Any]:
    user, password = "SAMSYN_KAFKA_SECURE_SAMSYN_USER", "SAMSYN_KAFKA_SECURE_SAMSYN_PASSWORD"
    return client_args(secure, secure[user], secure[password])


def org_args(secure: dict[str, str]) -> dict[str, Any]:
    user, password = "SAMSYN_KAFKA_SECURE_ORG_USER", "SAMSYN_KAFKA_SECURE_ORG_PASSWORD"
    return client_args(secure, secure[user], secure[password])


@pytest.fixture(scope="module")
def samsyn_secure(
    stack: dict[str, str], secure: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Samsyn]:
    """A Samsyn process (API and every worker) whose every Kafka client uses the secured node,
    configured only through its SAMSYN_KAFKA_* settings. Its topics, groups and transactional
    ids start with "samsyn.", the prefix the ``samsyn`` principal's ACLs cover."""
    db: Path = tmp_path_factory.mktemp("secure") / "samsyn.db"
    s = start_samsyn(
        {**stack, "SAMSYN_KAFKA_BOOTSTRAP": secure["SAMSYN_KAFKA_SECURE_BOOTSTRAP"]},
        f"sqlite+aiosqlite:///{db}",
        prefix=f"{secure['SAMSYN_KAFKA_SECURE_PREFIX']}t{uuid.uuid4().hex[:8]}.",
        extra_env={
            "SAMSYN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SAMSYN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SAMSYN_KAFKA_SASL_USERNAME": secure["SAMSYN_KAFKA_SECURE_SAMSYN_USER"],
            "SAMSYN_KAFKA_SASL_PASSWORD": secure["SAMSYN_KAFKA_SECURE_SAMSYN_PASSWORD"],
            "SAMSYN_KAFKA_SSL_CAFILE": secure["SAMSYN_KAFKA_SECURE_CAFILE"],
        },
    )
    yield s
    s.stop()


def test_core_path_over_sasl_ssl(samsyn_secure: Samsyn) -> None:
    """Over the secured listener: organisations, a relationship, a school's mandatory report
    delivered to social services' feed, and the allow decision sealed in the audit chain. The
    readiness check's Kafka probe authenticates as well."""
    samsyn = samsyn_secure
    ready = samsyn.call("GET", "/readyz")
    assert ready.status_code == 200, ready.text
    barn = child(9)
    skola, soc = samsyn.org("school", "1443"), samsyn.org("social_services", "1443")
    skola.relate(barn, "enrolled")
    env = skola.envelope(
        barn,
        "mandatory.report",
        {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv testanmälan."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )
    status = skola.publish(env)
    assert {r["org"]: r["shared"] for r in status["recipients"]} == {soc.id: True}
    assert [i["event_id"] for i in soc.feed() if i["event_id"] == env["id"]] == [env["id"]]
    [record] = audit_for(samsyn, str(env["id"]), 1, recipient_org=soc.id)
    assert record["outcome"] == "allow"
    assert record["legal_ground"] == "mandatory_report"


@pytest.mark.parametrize(
    ("protocol", "user", "password"),
    [
        ("PLAINTEXT", None, None),  # no TLS at all
        ("SSL", None, None),  # TLS, but no SASL authentication
        ("SASL_SSL", "samsyn", "not-the-password"),  # a known user, a wrong password
        ("SASL_SSL", "nobody", "guess"),  # an unknown user
    ],
)
async def test_client_without_valid_credentials_is_refused(
    secure: dict[str, str],
    protocol: str,
    user: str | None,
    password: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without TLS and a valid SCRAM login no client gets as far as a metadata request."""
    admin = AIOKafkaAdminClient(**client_args(secure, user, password, protocol))
    try:
        with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(admin.start(), 20)
    finally:
        await admin.close()
    if user is not None:
        # aiokafka logs the broker's answer and then gives up bootstrapping.
        assert "SaslAuthenticationFailed" in caplog.text


async def test_other_principal_cannot_read_samsyn_topics(
    samsyn_secure: Samsyn, secure: dict[str, str]
) -> None:
    """An organisation's principal authenticates, but sees none of Samsyn's topics, is refused
    reading events.v1 and deliveries.v1 (every organisation's slices) and refused writing
    events.v1; on its own per-org prefix (samsyn.deliveries.<org>.) it may read."""
    prefix = samsyn_secure.env["SAMSYN_TOPIC_PREFIX"]
    org = secure["SAMSYN_KAFKA_SECURE_ORG"]

    admin = AIOKafkaAdminClient(**org_args(secure))
    await admin.start()
    try:
        visible = await admin.list_topics()
    finally:
        await admin.close()
    assert not [t for t in visible if t.startswith(prefix)], "Samsyn topics listed to an org"

    for topic in ("events.v1", "deliveries.v1", "audit.v1"):
        consumer = AIOKafkaConsumer(prefix + topic, group_id=f"{org}.reader", **org_args(secure))
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await consumer.start()
        finally:
            await consumer.stop()

    producer = AIOKafkaProducer(**org_args(secure))
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(prefix + "events.v1", b"forged")
    finally:
        await producer.stop()

    # The shape for per-org topics: Samsyn (its ACLs cover "samsyn.") writes the org's topic,
    # the org reads it with a group under its own prefix.
    own = f"samsyn.deliveries.{org}.{uuid.uuid4().hex[:6]}.v1"
    admin = AIOKafkaAdminClient(**samsyn_args(secure))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(own, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**samsyn_args(secure))
    await producer.start()
    try:
        await producer.send_and_wait(own, b"slice", key=org.encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        own, group_id=f"{org}.reader", auto_offset_reset="earliest", **org_args(secure)
    )
    await consumer.start()
    try:
        got = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    assert got.value == b"slice"
