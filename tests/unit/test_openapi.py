"""The OpenAPI document is the contract: its request schemas are the files under schemas/ that
the server validates with, and every error is problem+json."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from broker.app import create_app
from broker.config import Settings
from broker.contracts import SCHEMAS_DIR
from broker.web.openapi import webhook_url_rule


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    spec: dict[str, Any] = create_app(Settings(env="test")).openapi()
    return spec


def _file(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS_DIR / name).read_text())
    return schema


def test_request_bodies_are_the_schema_files(doc: dict[str, Any]) -> None:
    components = doc["components"]["schemas"]
    for path, name, component in (
        ("/v1/consents", "requests/consent.json", "ConsentRequest"),
        ("/v1/relationships", "requests/relationship.json", "RelationshipRequest"),
    ):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{component}"}
        assert components[component]["properties"] == _file(name)["properties"]
        assert components[component]["required"] == _file(name)["required"]
    # No second, hand-written model of the same bodies.
    assert not {"ConsentIn", "RelationshipIn", "HTTPValidationError"} & set(components)


def test_each_event_type_is_the_envelope_with_its_data_schema(doc: dict[str, Any]) -> None:
    components = doc["components"]["schemas"]
    envelope = _file("envelope.json")
    variants = [v["$ref"].rsplit("/", 1)[1] for v in components["CloudEvent"]["oneOf"]]
    assert len(variants) == len(list((SCHEMAS_DIR / "events").glob("*.json")))
    for name in variants:
        variant = components[name]
        assert variant["required"] == envelope["required"]
        assert variant["properties"]["subject"] == envelope["properties"]["subject"]
        data = components[variant["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert data["additionalProperties"] is False


def test_every_error_is_problem_json_and_path_parameters_have_patterns(
    doc: dict[str, Any],
) -> None:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            default = op["responses"]["default"]["content"]
            assert default == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path)
            for param in op.get("parameters", []):
                if param["in"] == "path":
                    assert param["schema"]["pattern"], (method, path, param["name"])


def test_webhook_url_rule_follows_the_environment(doc: dict[str, Any]) -> None:
    """http only in development and test, as consumers.webhooks.service.check_url has it."""
    rule = doc["components"]["schemas"]["WebhookIn"]["properties"]["url"]
    assert rule == webhook_url_rule("test")
    test = re.compile(rule["pattern"])
    production = re.compile(webhook_url_rule("production")["pattern"])
    for url, in_test, in_production in (
        ("https://elevhalsa.amal.se/push?x=1", True, True),
        ("http://127.0.0.1:8080/push", True, False),
        ("https://user:pw@amal.se/push", False, False),
        ("https://amal.se/push#part", False, False),
    ):
        assert (bool(test.match(url)), bool(production.match(url))) == (in_test, in_production)
