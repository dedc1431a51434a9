"""The compiled validator never accepts what the reference validator refuses.

Ingest accepts an instance when the compiled engine (jsonschema-rs) says it is valid, without
asking the reference (jsonschema); so for every schema under schemas/, anything the compiled
engine accepts must be valid for the reference too. Hypothesis mutates valid envelopes, event
data and request bodies field by field (other types, near-miss strings, trailing newlines,
non-ASCII digits, missing and unknown fields) and checks exactly that.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.contracts import Contracts, Schema

CONTRACTS = Contracts()

ENVELOPE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "source": "org/bengtsfors-grundskola",
    "type": "se.backabarnet.attendance.flagged.v1",
    "time": "2026-11-23T08:00:00Z",
    "subject": "201206152389",
    "datacontenttype": "application/json",
    "purpose": "early_support",
    "legalbasis": "consent",
    "consentref": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "data": {"period_start": "2026-10-01", "period_end": "2026-10-31", "absence_percent": 23.5},
}
DATA: dict[str, dict[str, Any]] = {
    "attendance.flagged": {
        "period_start": "2026-10-01",
        "period_end": "2026-10-31",
        "absence_percent": 23.5,
        "unexcused_percent": 4,
    },
    "concern.raised": {
        "areas": ["trygghet", "halsa"],
        "level": 2,
        "raised_by_role": "teacher",
        "description": "Fiktiv oro.",
    },
    "health.contact": {
        "service": "bvc",
        "reason_area": "halsa",
        "referral": True,
        "diagnosis_codes": ["F90.0"],
        "note": "Fiktiv anteckning.",
    },
    "mandatory.report": {"areas": ["omsorg"], "urgency": "urgent", "description": "Fiktiv."},
    "plan.updated": {
        "goals": ["Fiktivt mål"],
        "actions": [{"org": "bengtsfors-grundskola", "action": "Fiktiv", "due": "2026-12-01"}],
        "coordinator_org": "bengtsfors-socialtjanst",
    },
    "barnteam.convened": {
        "meeting_at": "2026-11-30T13:00:00Z",
        "participants": ["bengtsfors-grundskola", "bengtsfors-socialtjanst"],
    },
}
REQUESTS: dict[str, dict[str, Any]] = {
    "relationship": {
        "subject": "201206152389",
        "role": "enrolled",
        "valid_from": "2026-08-15T00:00:00Z",
    },
    "consent": {
        "subject": "201206152389",
        "given_by": [{"role": "guardian"}],
        "scope": {
            "from_kinds": ["school"],
            "to_kinds": ["health"],
            "categories": ["attendance"],
            "purposes": ["early_support"],
        },
        "valid_from": "2026-08-15T00:00:00Z",
        "valid_until": "2027-08-15T00:00:00Z",
    },
}

near_miss_strings = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\n",
            "early_support\n",
            "201206152389\n",
            "٢٠١٢٠٦١٥٢٣٨٩",  # Arabic-Indic digits
            "2012061523８9",  # a full-width digit
            "2026-10-31\n",
            "2026-02-30",
            "2026-13-01T00:00:00Z",
            "1b4e28ba2fa111d2883f0016d3cca427",
            "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}",
            "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427",
            "org/",
            "org/Bengtsfors",
            "se.backabarnet.attendance.flagged.v2",
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    near_miss_strings,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(near_miss_strings, inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a member or item of ``value`` (the whole of it excluded)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found += [(*prefix, k), *paths(v, (*prefix, k))]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += [(*prefix, i), *paths(v, (*prefix, i))]
    return found


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """``valid`` with one to three members replaced, removed or added."""
    instance = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        where = paths(instance)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = instance
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(near_miss_strings)] = draw(values)
        else:
            parent.append(draw(values))
    return instance


def check(schema: Schema, instance: Any) -> None:
    if schema.compiled.is_valid(instance):
        assert not list(schema.reference.iter_errors(instance)), instance


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@FAST
@given(mutated(ENVELOPE))
def test_envelope(instance: Any) -> None:
    """Mutated envelopes: compiled-valid implies reference-valid."""
    check(CONTRACTS.envelope, instance)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATA))
@FAST
@given(data=st.data())
def test_event_data(name: str, data: st.DataObject) -> None:
    """Mutated data of each event type: compiled-valid implies reference-valid."""
    schema = CONTRACTS.events[f"se.backabarnet.{name}.v1"].validator
    assert schema.compiled.is_valid(DATA[name]), "the sample must start valid"
    check(schema, data.draw(mutated(DATA[name])))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REQUESTS))
@FAST
@given(data=st.data())
def test_request_bodies(name: str, data: st.DataObject) -> None:
    """Mutated consent and relationship bodies: compiled-valid implies reference-valid."""
    schema = CONTRACTS.requests[name]
    assert schema.compiled.is_valid(REQUESTS[name]), "the sample must start valid"
    check(schema, data.draw(mutated(REQUESTS[name])))


def test_every_schema_runs_on_both_engines() -> None:
    """Each schema of schemas/ is a Schema: no event type or request body has one engine only."""
    schemas = [CONTRACTS.envelope, *CONTRACTS.requests.values()]
    schemas += [e.validator for e in CONTRACTS.events.values()]
    assert all(isinstance(s, Schema) for s in schemas)
    assert set(DATA) <= {e.name for e in CONTRACTS.events.values()}


def test_invalid_input_is_explained_by_the_reference() -> None:
    """What the compiled engine refuses gets the reference's pointer and message."""
    bad = {**ENVELOPE, "purpose": "curiosity"}
    (error,) = CONTRACTS.envelope_errors(bad)
    assert error["pointer"] == "/purpose"
    assert "'curiosity' is not one of" in error["detail"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time", "2026-13-01T08:00:00Z"),
        ("time", "2026-02-30T08:00:00Z"),
        ("time", "2026-11-23 08:00"),
        ("dataschema", "not a uri"),
    ],
)
def test_formats_refused_by_both_engines(field: str, value: str) -> None:
    """A time that is not RFC 3339 or a dataschema that is not a URI is refused, and the
    reference engine says where: the reference checks these formats too (rfc3339-validator,
    rfc3986-validator), so the two engines cannot disagree on them."""
    bad = {**ENVELOPE, field: value}
    assert not CONTRACTS.envelope.compiled.is_valid(bad)
    errors = CONTRACTS.envelope_errors(bad)
    assert errors
    assert {e["pointer"] for e in errors} == {f"/{field}"}, errors
