"""The JSON Schemas under ``schemas/``: they validate input and tell the projector which field
belongs to which category (``x-category``), so the two can never disagree.

Each schema runs on two engines. A compiled validator (jsonschema-rs) answers whether an
instance is valid in microseconds, which is all that valid input (nearly all input) needs; only
when it says no does the reference validator (jsonschema) explain why, with the pointers and
messages that the problem+json answers carry. Input is accepted when either engine accepts it,
so the compiled one can never refuse what the reference accepts; that it never accepts what the
reference refuses is pinned by a differential test (tests/unit/test_contracts_engines.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
TYPE_PREFIX = "se.backabarnet."


class Schema:
    """One JSON Schema on both engines (see the module's docstring)."""

    def __init__(self, schema: dict[str, Any], checker: FormatChecker) -> None:
        self.schema = schema
        self.reference = Draft202012Validator(schema, format_checker=checker)
        self.compiled = jsonschema_rs.validator_for(schema, validate_formats=True)

    def errors(self, instance: Any, prefix: str = "") -> list[dict[str, str]]:
        if self.compiled.is_valid(instance):
            return []
        return explain(list(self.reference.iter_errors(instance)), prefix)


@dataclass(frozen=True)
class EventType:
    name: str  # e.g. "attendance.flagged"
    version: int
    validator: Schema
    categories: dict[str, str]  # field -> category

    @property
    def type(self) -> str:
        return f"{TYPE_PREFIX}{self.name}.v{self.version}"


def _pointer(error: ValidationError) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path)


def explain(errors: list[ValidationError], prefix: str = "") -> list[dict[str, str]]:
    """Problem+json ``errors`` entries: a JSON pointer and a sentence a developer can act on."""
    out = []
    for err in sorted(errors, key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        pointer = prefix + _pointer(err)
        if err.validator == "additionalProperties":
            detail = f"unknown field: {err.message}"
        else:
            detail = err.message
        out.append({"pointer": pointer or "/", "detail": detail})
    return out


class Contracts:
    def __init__(self, root: Path = SCHEMAS_DIR) -> None:
        self.root = root
        checker = FormatChecker()
        self.envelope = Schema(self._load("envelope.json"), checker)
        self.requests = {
            p.stem: Schema(json.loads(p.read_text()), checker)
            for p in sorted((root / "requests").glob("*.json"))
        }
        self.events: dict[str, EventType] = {}
        for path in sorted((root / "events").glob("*.json")):
            name, _, version = path.stem.rpartition(".v")
            schema = json.loads(path.read_text())
            Draft202012Validator.check_schema(schema)
            categories = {field: spec["x-category"] for field, spec in schema["properties"].items()}
            et = EventType(
                name=name,
                version=int(version),
                validator=Schema(schema, checker),
                categories=categories,
            )
            self.events[et.type] = et

    def _load(self, name: str) -> dict[str, Any]:
        schema: dict[str, Any] = json.loads((self.root / name).read_text())
        return schema

    def envelope_errors(self, body: Any) -> list[dict[str, str]]:
        return self.envelope.errors(body)

    def data_errors(self, event_type: EventType, data: Any) -> list[dict[str, str]]:
        return event_type.validator.errors(data, prefix="/data")

    def request_errors(self, name: str, body: Any) -> list[dict[str, str]]:
        return self.requests[name].errors(body)
