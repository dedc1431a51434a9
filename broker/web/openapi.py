"""OpenAPI pieces shared by every router: the problem+json error responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from broker.contracts import Contracts

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
    }


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("Malformed request"),
    401: _problem("Missing, expired or invalid token"),
    403: _problem("The token lacks the scope, or the caller may not act for that organisation"),
    404: _problem("Not found (or not yours)"),
    409: _problem("Conflicts with the current state"),
    422: _problem("The body does not match its schema"),
    429: _problem("Rate limited"),
    503: _problem("Kafka, OPA or the database is unavailable; nothing was written"),
}


def _embeddable(schema: Mapping[str, Any] | bool) -> dict[str, Any]:
    """A JSON Schema file as an OpenAPI 3.1 component (no ``$id``/``$schema`` of its own)."""
    assert isinstance(schema, Mapping), "schemas/ holds object schemas only"
    return {k: v for k, v in schema.items() if k not in ("$id", "$schema")}


def with_contract_schemas(
    openapi: dict[str, Any], contracts: Contracts, max_batch_events: int
) -> dict[str, Any]:
    """Link the files under ``schemas/`` into the OpenAPI document: the envelope, and per event
    type the envelope with that type's ``data`` schema (so ``x-category`` shows in the docs)."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    components["CloudEventEnvelope"] = _embeddable(contracts.envelope.schema)
    variants = []
    for event_type in sorted(contracts.events.values(), key=lambda e: e.type):
        name = f"EventData_{event_type.name.replace('.', '_')}_v{event_type.version}"
        components[name] = _embeddable(event_type.validator.schema)
        variants.append(
            {
                "allOf": [
                    {"$ref": "#/components/schemas/CloudEventEnvelope"},
                    {
                        "properties": {
                            "type": {"const": event_type.type},
                            "data": {"$ref": f"#/components/schemas/{name}"},
                        }
                    },
                ]
            }
        )
    components["CloudEvent"] = {"oneOf": variants}
    components["CloudEventBatch"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/CloudEvent"},
        "maxItems": max_batch_events,
    }
    components["Problem"] = PROBLEM_SCHEMA
    components["BatchResult"] = {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": ["string", "null"]},
            "status": {"enum": ["accepted", "duplicate", "rejected"]},
            "problem": {"$ref": "#/components/schemas/Problem"},
        },
    }
    return openapi


def install_openapi(app: FastAPI, contracts: Contracts, max_batch_events: int) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_contract_schemas(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                ),
                contracts,
                max_batch_events,
            )
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
