"""The JSON Schemas in schemas/: well-formed, categorised, and as strict as the contract says."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EVENT_TYPES = [
    "concern.raised",
    "wellbeing.assessed",
    "attendance.flagged",
    "support.decided",
    "health.contact",
    "social.case",
    "police.observation",
    "plan.updated",
    "barnteam.convened",
    "mandatory.report",
]
CATEGORIES = {
    "identity",
    "attendance",
    "education_support",
    "wellbeing",
    "concern",
    "concern_detail",
    "health",
    "health_detail",
    "social",
    "social_detail",
    "police",
    "police_detail",
    "plan",
}
# The contract's table of fields and their categories (CONTRACT.md section 4).
FIELD_CATEGORIES = {
    "concern.raised": {
        "areas": "concern",
        "level": "concern",
        "raised_by_role": "concern",
        "description": "concern_detail",
    },
    "wellbeing.assessed": {"ratings": "wellbeing", "summary": "concern_detail"},
    "attendance.flagged": {
        "period_start": "attendance",
        "period_end": "attendance",
        "absence_percent": "attendance",
        "unexcused_percent": "attendance",
    },
    "support.decided": {"measure": "education_support", "description": "education_support"},
    "health.contact": {
        "service": "health",
        "reason_area": "health",
        "referral": "health",
        "diagnosis_codes": "health_detail",
        "note": "health_detail",
    },
    "social.case": {"stage": "social", "intervention": "social", "note": "social_detail"},
    "police.observation": {
        "kind": "police",
        "offence_code": "police_detail",
        "place": "police_detail",
        "note": "police_detail",
    },
    "plan.updated": {"goals": "plan", "actions": "plan", "coordinator_org": "plan"},
    "barnteam.convened": {"meeting_at": "plan", "participants": "plan"},
    "mandatory.report": {"areas": "concern", "urgency": "concern", "description": "concern_detail"},
}
# A value of a JSON type other than the one a property declares.
WRONG_TYPE_VALUE = {
    "string": 7,
    "integer": "2",
    "number": "23.5",
    "boolean": "true",
    "array": "trygghet",
    "object": ["trygghet"],
}
ENVELOPE_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "source": "org/bengtsfors-grundskola",
    "type": "se.backabarnet.attendance.flagged.v1",
    "time": "2026-11-23T08:00:00Z",
    "subject": "201206159814",
    "datacontenttype": "application/json",
    "purpose": "early_support",
    "legalbasis": "consent",
    "consentref": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "data": {"period_start": "2026-10-01", "period_end": "2026-10-31", "absence_percent": 23.5},
}
CONSENT_EXAMPLE: dict[str, Any] = {
    "subject": "201206159814",
    "given_by": [{"role": "guardian"}, {"role": "guardian"}],
    "scope": {
        "from_kinds": ["health"],
        "to_kinds": ["student_health"],
        "categories": ["health"],
        "purposes": ["early_support"],
    },
    "valid_from": "2026-11-22T08:00:00Z",
    "valid_until": "2027-05-21T08:00:00Z",
}
RELATIONSHIP_EXAMPLE: dict[str, Any] = {
    "subject": "201206159814",
    "role": "enrolled",
    "valid_from": "2026-10-24T08:00:00+02:00",
}


def load(relative: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / relative).read_text(encoding="utf-8"))
    return schema


def validator(relative: str) -> Draft202012Validator:
    """Formats are not asserted, as by default: the patterns must carry the strictness."""
    return Draft202012Validator(load(relative))


def event(name: str) -> dict[str, Any]:
    return load(f"events/{name}.v1.json")


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(event(name)["examples"][0])
    return data


ALL_FILES = sorted(str(p.relative_to(SCHEMAS)) for p in SCHEMAS.rglob("*.json"))


def test_there_is_exactly_one_schema_per_event_type() -> None:
    """schemas/events/ holds the ten v1 event types of the contract and nothing else."""
    assert sorted(p.name for p in (SCHEMAS / "events").iterdir()) == sorted(
        f"{name}.v1.json" for name in EVENT_TYPES
    )


@pytest.mark.parametrize("relative", ALL_FILES)
def test_every_file_is_a_valid_2020_12_schema_with_an_id(relative: str) -> None:
    """Each file is a well-formed draft 2020-12 schema with a title and a samsyn.se $id."""
    schema = load(relative)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://samsyn.se/schemas/{relative}"
    assert schema["title"]
    assert schema["description"]


def test_categories_file_lists_the_thirteen_categories() -> None:
    """categories.json lists the contract's 13 categories, each in English and Swedish."""
    entries = load("categories.json")["oneOf"]
    assert {entry["const"] for entry in entries} == CATEGORIES
    assert len(entries) == len(CATEGORIES)
    assert all(entry["description"] and entry["x-sv"] for entry in entries)


@pytest.mark.parametrize("name", EVENT_TYPES)
def test_every_field_carries_its_contract_category(name: str) -> None:
    """Every data field has x-category, and it is the one the contract's table names."""
    properties = event(name)["properties"]
    assert {field: spec.get("x-category") for field, spec in properties.items()} == (
        FIELD_CATEGORIES[name]
    )
    assert {spec["x-category"] for spec in properties.values()} <= CATEGORIES


@pytest.mark.parametrize("name", EVENT_TYPES)
def test_event_schema_shape(name: str) -> None:
    """Each event schema is a closed object whose required fields are all declared."""
    schema = event(name)
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema.get("required", [])) <= set(schema["properties"])


@pytest.mark.parametrize("name", EVENT_TYPES)
def test_the_example_is_accepted(name: str) -> None:
    """The example each schema publishes for integrators is itself valid and uses every field."""
    data = example(name)
    validator(f"events/{name}.v1.json").validate(data)
    assert set(data) == set(event(name)["properties"])


@pytest.mark.parametrize("name", EVENT_TYPES)
def test_an_unknown_field_is_rejected(name: str) -> None:
    """A field the contract does not list is refused rather than passed through."""
    data = example(name)
    data["extra"] = "x"
    assert not validator(f"events/{name}.v1.json").is_valid(data)


@pytest.mark.parametrize(
    ("name", "field"),
    [(name, field) for name in EVENT_TYPES for field in FIELD_CATEGORIES[name]],
)
def test_a_wrong_type_is_rejected(name: str, field: str) -> None:
    """Every field is type-checked: a value of another JSON type fails."""
    data = example(name)
    data[field] = WRONG_TYPE_VALUE[event(name)["properties"][field]["type"]]
    assert not validator(f"events/{name}.v1.json").is_valid(data)


@pytest.mark.parametrize("name", [n for n in EVENT_TYPES if event(n).get("required")])
def test_missing_required_fields_are_rejected(name: str) -> None:
    """Leaving out any required field fails."""
    for field in event(name)["required"]:
        data = example(name)
        del data[field]
        assert not validator(f"events/{name}.v1.json").is_valid(data), field


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("concern.raised", "areas", []),
        ("concern.raised", "areas", ["happiness"]),
        ("concern.raised", "areas", ["trygghet", "trygghet"]),
        ("concern.raised", "level", 0),
        ("concern.raised", "level", 5),
        ("concern.raised", "level", True),
        ("concern.raised", "raised_by_role", "x" * 65),
        ("concern.raised", "description", "x" * 4001),
        ("concern.raised", "description", ""),
        ("wellbeing.assessed", "ratings", {}),
        ("wellbeing.assessed", "ratings", {"happiness": 3}),
        ("wellbeing.assessed", "ratings", {"trygghet": 6}),
        ("wellbeing.assessed", "ratings", {"trygghet": 0}),
        ("wellbeing.assessed", "ratings", {"trygghet": 2.5}),
        ("attendance.flagged", "period_start", "2026-10-1"),
        ("attendance.flagged", "period_start", "2026-13-01"),
        ("attendance.flagged", "period_start", "2026-10-01\n"),
        ("attendance.flagged", "period_start", "٢٠٢٦-١٠-٠١"),
        ("attendance.flagged", "period_end", "2026-10-31T00:00:00Z"),
        ("attendance.flagged", "absence_percent", -0.1),
        ("attendance.flagged", "absence_percent", 100.1),
        ("attendance.flagged", "unexcused_percent", 101),
        ("support.decided", "measure", "extra_help"),
        ("health.contact", "service", "dentist"),
        ("health.contact", "reason_area", "happiness"),
        ("health.contact", "diagnosis_codes", ["f90.0"]),
        ("health.contact", "diagnosis_codes", ["F9"]),
        ("health.contact", "diagnosis_codes", ["F90.0\n"]),
        ("health.contact", "diagnosis_codes", ["ADHD"]),
        ("social.case", "stage", "open"),
        ("police.observation", "kind", "arrest"),
        ("plan.updated", "actions", [{"org": "skola-1", "action": "x"}]),
        (
            "plan.updated",
            "actions",
            [{"org": "skola-1", "action": "x", "due": "2026-12-01", "by": "y"}],
        ),
        ("plan.updated", "actions", [{"org": "Skola 1", "action": "x", "due": "2026-12-01"}]),
        ("plan.updated", "actions", [{"org": "skola-1", "action": "x", "due": "1 dec"}]),
        ("plan.updated", "coordinator_org", "a"),
        ("plan.updated", "coordinator_org", "-ifo"),
        ("barnteam.convened", "meeting_at", "2026-12-02 13:00"),
        ("barnteam.convened", "meeting_at", "2026-12-02T13:00:00"),
        ("barnteam.convened", "participants", []),
        ("barnteam.convened", "participants", ["skola-1", "skola-1"]),
        ("barnteam.convened", "participants", ["skola-1\n"]),
        ("mandatory.report", "urgency", "high"),
    ],
)
def test_out_of_range_values_are_rejected(name: str, field: str, value: object) -> None:
    """Enums, ranges, lengths, dates, codes and organisation ids are enforced by the schema."""
    data = example(name)
    data[field] = value
    assert not validator(f"events/{name}.v1.json").is_valid(data)


def test_plan_update_must_change_something() -> None:
    """An empty plan.updated says nothing and is refused."""
    assert not validator("events/plan.updated.v1.json").is_valid({})


def test_envelope_accepts_the_contract_example() -> None:
    """The envelope example of CONTRACT.md section 4 (with a fictional subject) is valid."""
    validator("envelope.json").validate(ENVELOPE_EXAMPLE)


def test_envelope_requires_consentref_under_consent() -> None:
    """legalbasis consent without consentref fails; other grounds need no consentref."""
    envelope = validator("envelope.json")
    without = {k: v for k, v in ENVELOPE_EXAMPLE.items() if k != "consentref"}
    assert not envelope.is_valid(without)
    assert envelope.is_valid(
        without | {"legalbasis": "mandatory_report", "purpose": "mandatory_report"}
    )


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("specversion", "0.3"),
        ("id", ""),
        ("id", "x" * 129),
        ("id", "has space"),
        ("source", "bengtsfors-grundskola"),
        ("source", "org/Bengtsfors"),
        ("source", "org/a"),
        ("type", "se.backabarnet.attendance.flagged"),
        ("type", "com.example.attendance.flagged.v1"),
        ("time", "2026-11-23"),
        ("time", "2026-11-23T08:00:00"),
        ("subject", "2012-06-15-2389"),
        ("subject", "20120615 2389"),
        ("subject", "201206159814\n"),
        ("datacontenttype", "text/plain"),
        ("purpose", "curiosity"),
        ("legalbasis", "legitimate_interest"),
        ("consentref", "c1"),
        ("municipality", "146"),
        ("municipality", "1460\n"),
        ("data", "period"),
        ("traceparent", "00-abc"),
    ],
)
def test_envelope_rejects_bad_attributes(attribute: str, value: object) -> None:
    """Every context attribute is checked, and attributes Samsyn does not define are refused."""
    assert not validator("envelope.json").is_valid(ENVELOPE_EXAMPLE | {attribute: value})


@pytest.mark.parametrize(
    "attribute",
    ["specversion", "id", "source", "type", "subject", "purpose", "legalbasis", "data"],
)
def test_envelope_required_attributes(attribute: str) -> None:
    """The attributes the broker needs to route an event cannot be left out."""
    envelope = {k: v for k, v in ENVELOPE_EXAMPLE.items() if k != attribute}
    assert not validator("envelope.json").is_valid(envelope)


def test_envelope_optional_attributes() -> None:
    """time, datacontenttype and consentref (outside consent) may be left out; dataschema and
    municipality may be added."""
    minimal = {
        k: v
        for k, v in ENVELOPE_EXAMPLE.items()
        if k not in {"time", "datacontenttype", "consentref"}
    }
    minimal |= {
        "legalbasis": "mandatory_report",
        "purpose": "mandatory_report",
        "municipality": "1460",
        "dataschema": "https://samsyn.se/schemas/events/mandatory.report.v1.json",
    }
    validator("envelope.json").validate(minimal)


def test_consent_request_accepts_a_typical_body() -> None:
    """A consent as the scenarios send it (two guardians, kinds to kinds) is valid."""
    validator("requests/consent.json").validate(CONSENT_EXAMPLE)


@pytest.mark.parametrize(
    "scope_change",
    [
        {"from_kinds": [], "from_orgs": ["vc-bengtsfors"]},
        {"to_kinds": [], "to_orgs": ["skola-1", "skola-2"]},
        {"from_kinds": ["health"], "from_orgs": ["vc-bengtsfors"]},
    ],
)
def test_consent_scope_may_name_orgs_or_kinds(scope_change: dict[str, object]) -> None:
    """Either side of the scope may be given as organisations, kinds, or both."""
    body = copy.deepcopy(CONSENT_EXAMPLE)
    body["scope"] |= scope_change
    validator("requests/consent.json").validate(body)


@pytest.mark.parametrize(
    "scope_change",
    [
        {"from_kinds": []},
        {"to_kinds": [], "to_orgs": []},
        {"categories": []},
        {"categories": ["everything"]},
        {"purposes": []},
        {"purposes": ["marketing"]},
        {"from_kinds": ["parish"]},
        {"to_orgs": ["Not A Slug"]},
        {"valid_from": "2026-11-22T08:00:00Z"},
    ],
)
def test_consent_scope_rejects_empty_or_unknown_parts(scope_change: dict[str, object]) -> None:
    """Each side names someone, categories and purposes are non-empty and from the contract."""
    body = copy.deepcopy(CONSENT_EXAMPLE)
    body["scope"] |= scope_change
    assert not validator("requests/consent.json").is_valid(body)


def test_consent_scope_needs_a_from_and_a_to() -> None:
    """A scope without any disclosing side or any receiving side is refused."""
    consent = validator("requests/consent.json")
    for side in ("from_kinds", "to_kinds"):
        body = copy.deepcopy(CONSENT_EXAMPLE)
        del body["scope"][side]
        assert not consent.is_valid(body), side


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("given_by", []),
        ("given_by", [{"role": "teacher"}]),
        ("given_by", [{"role": "guardian", "name": "x"}]),
        ("valid_until", "2027-05-21"),
        ("subject", "20120615981"),
        ("extra", True),
    ],
)
def test_consent_request_rejects_bad_fields(field: str, value: object) -> None:
    """Who gave consent, its period and the subject are checked; unknown fields are refused."""
    assert not validator("requests/consent.json").is_valid(CONSENT_EXAMPLE | {field: value})


@pytest.mark.parametrize("field", ["subject", "given_by", "scope", "valid_from", "valid_until"])
def test_consent_request_required_fields(field: str) -> None:
    """A consent without its subject, giver, scope or period is refused."""
    body = {k: v for k, v in CONSENT_EXAMPLE.items() if k != field}
    assert not validator("requests/consent.json").is_valid(body)


@pytest.mark.parametrize(
    "role",
    [
        "enrolled",
        "listed",
        "case_open",
        "barnkontakt",
        "barnteam_member",
        "stodsamordnare",
        "sip_participant",
    ],
)
def test_relationship_roles(role: str) -> None:
    """Each role of the contract is accepted, with or without an end."""
    relationship = validator("requests/relationship.json")
    relationship.validate(RELATIONSHIP_EXAMPLE | {"role": role})
    relationship.validate(
        RELATIONSHIP_EXAMPLE | {"role": role, "valid_until": "2027-06-30T00:00:00Z"}
    )


@pytest.mark.parametrize(
    "change",
    [
        {"role": "friend"},
        {"valid_from": "yesterday"},
        {"organisation": "skola-1"},
        {"org": "Skola 1"},
        {"subject": 201206159814},
    ],
)
def test_relationship_rejects_bad_fields(change: dict[str, object]) -> None:
    """Unknown roles, malformed times, malformed organisation ids and fields the contract does
    not list are refused."""
    assert not validator("requests/relationship.json").is_valid(RELATIONSHIP_EXAMPLE | change)


@pytest.mark.parametrize("field", ["subject", "role", "valid_from"])
def test_relationship_required_fields(field: str) -> None:
    """A relationship needs its child, its role and its start."""
    body = {k: v for k, v in RELATIONSHIP_EXAMPLE.items() if k != field}
    assert not validator("requests/relationship.json").is_valid(body)


def test_request_enums_match_the_categories_file() -> None:
    """The consent scope's categories are exactly those categories.json lists."""
    items = load("requests/consent.json")["properties"]["scope"]["properties"]["categories"]
    assert set(items["items"]["enum"]) == CATEGORIES
