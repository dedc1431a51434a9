"""A batch of events (``application/cloudevents-batch+json``): each event validated, made
idempotent and accepted on its own, and one result per event, in order; the round trips are the
batch's, not each event's: one admission query to the database and one to OPA, one key
look-up, one INSERT and one Kafka write for the accepted ones."""

from __future__ import annotations

from typing import Any

import msgspec

from broker.auth.tokens import Caller
from broker.ingest import service
from broker.runtime.state import AppState
from broker.web.errors import Conflict, PayloadTooLarge, Problem

INSTANCE = "/v1/events"


def _result(event_id: Any, outcome: service.Accepted | Problem) -> dict[str, Any]:
    if isinstance(outcome, Problem):
        return {
            "id": event_id if isinstance(event_id, str) else None,
            "status": "rejected",
            "problem": outcome.body(instance=INSTANCE),
        }
    return {"id": outcome.event_id, "status": "accepted" if outcome.first_time else "duplicate"}


def _size(body: Any) -> int:
    """The event's length as compact JSON (UTF-8, nothing escaped that need not be). msgspec's
    encoder, a tenth of the standard library's time for an event (0.7 against 7.8 µs); it writes
    an exponent without its plus sign (``1e16``), so a float may count a byte less."""
    return len(msgspec.json.encode(body))


async def accept_batch(state: AppState, caller: Caller, bodies: list[Any]) -> list[dict[str, Any]]:
    outcomes: list[service.Accepted | Problem | None] = [None] * len(bodies)
    fresh: list[tuple[int, service.Prepared]] = []
    first: dict[str, tuple[int, service.Prepared]] = {}
    repeats: list[tuple[int, int]] = []  # (index, index of the first event with that id)
    limit = state.settings.max_body_bytes
    sized: list[tuple[int, Any]] = []
    for index, body in enumerate(bodies):
        if _size(body) > limit:
            outcomes[index] = PayloadTooLarge(f"the event exceeds the limit of {limit} bytes")
        else:
            sized.append((index, body))
    prepared = await service.prepare_all(state, caller, [body for _, body in sized])
    for (index, _), event in zip(sized, prepared, strict=True):
        if isinstance(event, Problem):
            outcomes[index] = event
            continue
        earlier = first.get(event.event_id)
        if earlier is None:
            first[event.event_id] = (index, event)
            fresh.append((index, event))
        elif earlier[1].digest == event.digest:
            repeats.append((index, earlier[0]))
        else:
            outcomes[index] = Conflict(
                f"event {event.event_id!r} appears earlier in the batch with another body; "
                "ids are idempotency keys"
            )
    stored = await service.store_together(state, [event for _, event in fresh])
    for (index, _), outcome in zip(fresh, stored, strict=True):
        outcomes[index] = outcome
    for index, first_index in repeats:
        original = outcomes[first_index]
        outcomes[index] = (
            service.Accepted(original.event_id, first_time=False)
            if isinstance(original, service.Accepted)
            else original
        )
    results = []
    for body, result in zip(bodies, outcomes, strict=True):
        assert result is not None, "every event has an outcome by now"
        results.append(_result(body.get("id") if isinstance(body, dict) else None, result))
    return results
