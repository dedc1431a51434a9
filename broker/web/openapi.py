"""OpenAPI pieces shared by every router: the problem+json error responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from broker.config import Settings
from broker.contracts import Contracts
from broker.web import examples

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
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
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
    """A JSON Schema file as an OpenAPI 3.1 component: no ``$id``/``$schema`` of its own, and
    its title folded into the description, so that generators name the model after the
    component (``ConsentRequest``) rather than after a Swedish title."""
    assert isinstance(schema, Mapping), "schemas/ holds object schemas only"
    out = {k: v for k, v in schema.items() if k not in ("$id", "$schema", "title")}
    if "title" in schema:
        out["description"] = f"{schema['title']}. {schema.get('description', '')}".strip()
    return out


def with_contract_schemas(
    openapi: dict[str, Any], contracts: Contracts, max_batch_events: int
) -> dict[str, Any]:
    """Link the files under ``schemas/`` into the OpenAPI document: per event type the envelope
    with that type's ``data`` schema (so ``x-category`` shows in the docs), one of which is a
    ``CloudEvent``; and the request bodies of ``schemas/requests/``."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    for request, validator in contracts.requests.items():
        components[_request_component(request)] = _embeddable(validator.schema)
    variants = []
    for event_type in sorted(contracts.events.values(), key=lambda e: e.type):
        name = f"EventData_{event_type.name.replace('.', '_')}_v{event_type.version}"
        components[name] = _embeddable(event_type.validator.schema)
        # Each variant a named component (generators make models of named schemas, not of
        # inline ones in a oneOf), and a copy of the envelope rather than an allOf, which they
        # cannot merge (the envelope's pattern on type vs. this type's const).
        variant = f"CloudEvent_{event_type.name.replace('.', '_')}_v{event_type.version}"
        envelope = _embeddable(contracts.envelope.schema)
        components[variant] = envelope | {
            "description": f"A {event_type.type} event (CloudEvents 1.0, structured).",
            "properties": envelope["properties"]
            | {
                "type": {"type": "string", "const": event_type.type},
                "data": {"$ref": f"#/components/schemas/{name}"},
            },
        }
        variants.append({"$ref": f"#/components/schemas/{variant}"})
    components["CloudEvent"] = {"oneOf": variants}
    # Items are not held to the CloudEvent schema here: each event of a batch is validated on
    # its own and an invalid one is answered in its result, not by refusing the batch.
    components["CloudEventBatch"] = {
        "type": "array",
        "items": {"description": "A structured CloudEvent (see CloudEvent)"},
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


def contract_body(name: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is ``schemas/requests/<name>.json``: the same
    file the server validates with, and the demo's example."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{_request_component(name)}"},
                    "example": examples.REQUESTS[name],
                }
            },
        }
    }


def _request_component(name: str) -> str:
    return f"{name.capitalize()}Request"


def webhook_url_rule(env: str) -> dict[str, Any]:
    """``consumers.webhooks.service.check_url`` as a pattern: http(s) in development and test,
    https elsewhere; a host; no credentials (no ``@`` before the path); no fragment. The rule
    against the broker's own machine outside development is in the description only."""
    schemes = "https?" if env in ("development", "test") else "https"
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": 2000,
        "pattern": f"^{schemes}://[A-Za-z0-9._~-]+(:[0-9]{{1,5}})?([/?][^#\\s]*)?$",
        "description": "Where to POST new feed items: https (http only in development and "
        "test), no credentials, no fragment, and outside development not the broker's own "
        "machine (localhost, loopback, link-local).",
        "example": "https://elevhalsa.amal.se/samsyn/push",
    }


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


# Named in descriptions only (the batch's body, see POST /v1/events), kept for readers.
KEPT = {"CloudEventBatch"}


def _referenced_only(openapi: dict[str, Any]) -> None:
    """Drop the components no operation reaches: the pydantic models of bodies whose published
    schema is the JSON Schema file, and FastAPI's own validation-error models."""
    components = openapi["components"]["schemas"]
    prefix = "#/components/schemas/"
    reached: set[str] = set()
    todo = {r.removeprefix(prefix) for r in _refs(openapi["paths"])}
    while todo:
        name = todo.pop()
        if name in reached or name not in components:
            continue
        reached.add(name)
        todo |= {r.removeprefix(prefix) for r in _refs(components[name])}
    for name in set(components) - reached - KEPT:
        del components[name]


def _operations(openapi: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in openapi["paths"].values() for op in item.values()]


def _problems_everywhere(openapi: dict[str, Any]) -> None:
    """Every error is problem+json: FastAPI's own 422 model is replaced, and every operation
    names problem+json as its default answer."""
    for op in _operations(openapi):
        responses = op.setdefault("responses", {})
        fastapi_422 = responses.get("422", {}).get("content", {}).get("application/json")
        if fastapi_422 is not None:
            responses["422"] = PROBLEMS[422]
        responses.setdefault("default", _problem("An error (RFC 9457 problem+json)"))
        for param in op.get("parameters", []):
            # A query parameter is absent or a string: FastAPI's "or null" of an optional one
            # only makes generated clients send "None".
            schema = param.get("schema", {})
            variants = schema.get("anyOf")
            if variants and {"type": "null"} in variants and len(variants) == 2:
                (kept,) = [v for v in variants if v != {"type": "null"}]
                param["schema"] = {k: v for k, v in schema.items() if k != "anyOf"} | kept


def install_openapi(app: FastAPI, contracts: Contracts, settings: Settings) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = with_contract_schemas(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                ),
                contracts,
                settings.max_batch_events,
            )
            webhook = doc["components"]["schemas"]["WebhookIn"]
            webhook["properties"]["url"] = webhook_url_rule(settings.env)
            _problems_everywhere(doc)
            _referenced_only(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
