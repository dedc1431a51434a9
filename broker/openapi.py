"""OpenAPI pieces shared by every router: the problem+json error responses."""

from __future__ import annotations

from typing import Any

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
