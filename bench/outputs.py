"""Microseconds per event in the router's outputs step (``broker/router/outputs.py``): the
deliveries, routing summaries and audit records of a decided batch.

``python -m bench.outputs`` after a ``make bench`` run, which leaves the router's own policy
input for 100 events in ``var/bench/policy-input-100.json``: those events (their data made up to
the fields they name, one fictional child number), decided by the stack's OPA with the router's
query, then ``outputs`` timed in process time, and the encoding of its records for scale.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.crypto import PERSONAL, per_call_us
from broker.contracts import Contracts
from broker.infra.db import utcnow
from broker.policy.client import PolicyAnswer, PolicyClient
from broker.policy.input import Pending
from broker.privacy.aead import new_data_key
from broker.records import encode
from broker.router.outputs import outputs
from tests.kit import REPO, stack_env

INPUT = REPO / "var/bench/policy-input-100.json"


def pending(contracts: Contracts, event: dict[str, Any]) -> Pending:
    """The router's view of an event of the policy input: its envelope rebuilt around it."""
    event_type = next(t for t in contracts.events.values() if t.name == event["type"])
    return Pending(
        source_org=event["source"]["org"],
        source_kind=event["source"]["kind"],
        pseudonym=f"bench-{event['ref']}",
        envelope={
            "id": str(uuid.uuid4()),
            "type": event_type.type,
            "time": "2026-12-01T10:00:00Z",
            "subject": PERSONAL.subject,
            "purpose": event["purpose"],
            "legalbasis": event["legal_basis"],
            "consentref": str(uuid.uuid4()) if event.get("consent") else None,
            "data": {f: 12 if "percent" in f else "2026-11-01" for f in event["fields"]},
        },
        candidates=event["candidates"],
    )


async def decided(query: dict[str, Any]) -> PolicyAnswer:
    async with PolicyClient(stack_env()["SAMSYN_OPA_URL"], 30.0) as policy:
        return await policy.decide(query)


def main() -> None:
    contracts = Contracts()
    query = json.loads(INPUT.read_text())
    events = [pending(contracts, e) for e in query["events"]]
    answer = asyncio.run(decided(query))
    keys = {ev.pseudonym: AESGCM(new_data_key()) for ev in events}
    now = utcnow()
    made, _ = outputs(contracts, events, answer, now, keys)
    n = len(events)
    print(f"{n} events, {len(made)} records")
    outputs_us = per_call_us(lambda: outputs(contracts, events, answer, now, keys), 60)
    encode_us = per_call_us(lambda: [encode(o.value) for o in made], 60)
    print(f"outputs: {outputs_us / n:6.1f} µs per event")
    print(f"encoding its records: {encode_us / n:6.1f} µs per event")


if __name__ == "__main__":
    main()
