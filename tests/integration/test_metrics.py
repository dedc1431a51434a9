"""Observability on the real stack: the metrics the alert rules (deploy/observability/alerts.yaml)
rely on are exported, and consumer lag is end offset minus committed offset per partition."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from broker.config import Settings
from broker.infra import kafka
from broker.infra.topics import ensure_topics
from broker.router.loop import GROUP
from broker.runtime.lag import LagMonitor
from broker.runtime.offsets import LagProbe
from tests.kit import Samsyn, child

pytestmark = [pytest.mark.integration, pytest.mark.one_database]


Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples(samsyn: Samsyn, api_only: bool = False) -> Samples:
    """The samples of the API process's metrics, or of every Samsyn process's (the read side's
    worker exports what the materializer and the sealer count)."""
    text = samsyn.call("GET", "/metrics").text if api_only else samsyn.metrics()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def total(found: Samples, name: str, **labels: str) -> float:
    return sum(
        v for lbl, v in found.get(name, []) if all(lbl.get(k) == w for k, w in labels.items())
    )


def test_metrics_for_the_alerts_are_exported(samsyn: Samsyn) -> None:
    """After one mandatory report: events in by type, deliveries materialised, HTTP answers by
    route template and status, readiness per dependency, and router lag per partition."""
    skola, soc = samsyn.org("school", "1415"), samsyn.org("social_services", "1415")
    kind = "se.backabarnet.mandatory.report.v1"
    before = samples(samsyn)
    env = skola.envelope(
        child(6),
        "mandatory.report",
        {"areas": ["omsorg"], "urgency": "normal", "description": "Fiktiv testanmälan."},
        purpose="mandatory_report",
        basis="mandatory_report",
    )
    skola.publish(env)
    soc.wait_feed(lambda i: i["event_id"] == env["id"])
    assert samsyn.call("GET", "/readyz").status_code == 200

    after = samples(samsyn)
    accepted = "samsyn_events_accepted_total"
    assert total(after, accepted, type=kind) == total(before, accepted, type=kind) + 1
    stored = "samsyn_deliveries_materialised_total"
    assert total(after, stored) >= total(before, stored) + 1
    assert total(after, "samsyn_http_requests_total", route="/v1/events", status="202") >= 1
    # Route templates, never ids, are label values.
    assert total(after, "samsyn_http_requests_total", route="/v1/events/{event_id}") >= 1
    assert not [lbl for lbl, _ in after["samsyn_http_requests_total"] if env["id"] in lbl["route"]]
    api = samples(samsyn, api_only=True)
    for dependency in ("kafka", "opa", "database"):
        assert total(api, "samsyn_dependency_up", dependency=dependency) == 1
    partitions = {
        lbl["partition"]
        for lbl, _ in after.get("samsyn_consumer_lag", [])
        if lbl["group"] == "router" and lbl["topic"] == "events.v1"
    }
    assert partitions == {"0", "1", "2"}
    assert "samsyn_audit_chain_length" in after
    assert "samsyn_audit_reviews_overdue" in after
    assert "samsyn_policy_failures_total" in after


async def test_lag_is_end_offset_minus_committed(stack: dict[str, str]) -> None:
    """Ten records on events.v1, the router group committed past four of them on partition 0
    only: the sampled lag is six, and its gauges name the unprefixed topic."""
    settings = Settings(
        kafka_bootstrap=stack["SAMSYN_KAFKA_BOOTSTRAP"], topic_prefix=f"lag{uuid.uuid4().hex[:8]}."
    )
    await ensure_topics(settings, replication=settings.kafka_replication)
    topic = settings.topic(kafka.EVENTS)
    producer = AIOKafkaProducer(**kafka.connection(settings))
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, b"{}", partition=0 if i < 6 else 1)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        **kafka.connection(settings), group_id=settings.topic(GROUP), enable_auto_commit=False
    )
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    try:
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "")})
    finally:
        await consumer.stop()

    monitor = LagMonitor(settings)
    async with LagProbe(settings) as probe:
        totals = await monitor.sample(probe)
    # partition 0: 6 records, committed 4 -> 2; partition 1: 4 records, never committed -> 4.
    assert totals["router"] == 6
    labels = {"group": "router", "topic": "events.v1", "partition": "0"}
    assert REGISTRY.get_sample_value("samsyn_consumer_lag", labels) == 2
