"""The router's decision and routing counters count what its batches produced."""

from __future__ import annotations

from prometheus_client import REGISTRY

from broker.audit.records import record
from broker.records import AuditAction
from broker.router.loop import Router
from broker.router.outputs import Output
from tests.unit.test_materializer_batch import delivery, summary


def _decided(outcome: str, ground: str | None) -> Output:
    return Output(
        "audit.v1",
        None,
        record(action=AuditAction.DECISION, outcome=outcome, actor_org="a", legal_ground=ground),
    )


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_counts_each_decision_by_outcome_and_ground_and_each_routed_event() -> None:
    before = {
        "allow": _value("samsyn_decisions_total", outcome="allow", legal_ground="consent"),
        "deny": _value("samsyn_decisions_total", outcome="deny", legal_ground="-"),
        "routed": _value("samsyn_events_routed_total"),
    }
    shared = delivery("b")
    produced = [
        _decided("allow", "consent"),
        _decided("allow", "consent"),
        _decided("deny", None),
        # Not decisions: another audit action, a delivery.
        Output(
            "audit.v1",
            None,
            record(action=AuditAction.FEED_READ, outcome="allow", actor_org="a"),
        ),
        Output("deliveries.v1", "b", shared),
        Output("deliveries.v1", "a", summary(shared)),
        Output("deliveries.v1", "a", summary(delivery("c"))),
    ]
    Router._count(produced)
    assert _value("samsyn_decisions_total", outcome="allow", legal_ground="consent") == (
        before["allow"] + 2
    )
    assert _value("samsyn_decisions_total", outcome="deny", legal_ground="-") == before["deny"] + 1
    assert _value("samsyn_events_routed_total") == before["routed"] + 2
