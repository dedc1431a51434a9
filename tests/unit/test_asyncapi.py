"""docs/asyncapi.yaml, the AsyncAPI 3.0 document of the Kafka topics, checked offline: against the
AsyncAPI 3.0 object model of the ``asyncapi3`` package (no PyPI package ships the AsyncAPI 3.0
JSON Schema), every ``$ref`` resolving, every payload a JSON Schema, and the topics and audit
fields those of the code."""

from __future__ import annotations

import json
import warnings
from typing import Any

import msgspec
import pytest
import yaml
from jsonschema import Draft202012Validator

from broker.audit.records import record
from broker.infra.topics import PARTITIONS
from broker.records import (
    AuditAction,
    AuditEntry,
    ConsentCreated,
    ConsentWithdrawn,
    Delivery,
    IngestedEvent,
    ParkedEvent,
    Record,
    RelationshipCreated,
    RelationshipEnded,
    RoutingSummary,
    WrappedSubjectKey,
    encode,
)
from tests.kit import REPO

DOC_PATH = REPO / "docs" / "asyncapi.yaml"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text())
    return loaded


def test_valid_asyncapi_3(doc: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the package's own field names
        from asyncapi3 import AsyncAPI3

    model = AsyncAPI3.model_validate(doc)
    assert model.asyncapi == "3.0.0"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    for ref in _refs(doc):
        target, _, pointer = ref.partition("#")
        if target:
            assert (DOC_PATH.parent / target).is_file(), ref
            continue
        node: Any = doc
        for part in pointer.strip("/").split("/"):
            assert isinstance(node, dict), ref
            assert part in node, ref
            node = node[part]


def test_payloads_are_json_schemas(doc: dict[str, Any]) -> None:
    messages = doc["components"]["messages"]
    assert messages
    for name, message in messages.items():
        Draft202012Validator.check_schema(message["payload"])
        assert name == message["name"]


def _fields(*structs: type[Record]) -> set[str]:
    names = {f.encode_name for s in structs for f in msgspec.structs.fields(s)}
    tagged = {s.__struct_config__.tag_field for s in structs} - {None}
    return names | {str(t) for t in tagged}


def test_topics_and_records_are_the_codes(doc: dict[str, Any]) -> None:
    """The channels are the topics the code creates, and each message lists exactly the fields
    of the record type (broker/records.py) that is written there; an encoded audit record
    matches its payload schema."""
    assert {c["address"] for c in doc["channels"].values()} == set(PARTITIONS)
    messages = doc["components"]["messages"]
    changes = (ConsentCreated, ConsentWithdrawn, RelationshipCreated, RelationshipEnded)
    for name, structs in (
        ("acceptedEvent", (IngestedEvent,)),
        ("parkedEvent", (ParkedEvent,)),
        ("delivery", (Delivery,)),
        ("routed", (RoutingSummary,)),
        ("registryChange", changes),
        ("auditRecord", (AuditEntry,)),
        ("wrappedKey", (WrappedSubjectKey,)),
    ):
        assert set(messages[name]["payload"]["properties"]) == _fields(*structs), name
    made = json.loads(
        encode(record(action=AuditAction.FEED_READ, outcome="ok", actor_org="amal-skola"))
    )
    Draft202012Validator(messages["auditRecord"]["payload"]).validate(made)
