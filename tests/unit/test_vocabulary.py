"""One vocabulary, wherever it is written down: the JSON Schemas in ``schemas/`` (what callers
are held to), the Python types (what the API parses into) and the policy data in
``policies/data/`` (what the sharing rules reason about) name the same categories, organisation
kinds, roles, purposes, legal grounds and scopes. A word added to one and not the others would
be accepted by one layer and unknown to the next (a category outside the policy's vocabulary,
say, is never shared); this test names the file that is behind.

"equal" sources list the whole vocabulary; "within" sources use part of it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from broker.auth import tokens
from broker.registry import schemas as api

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
POLICY_DATA = REPO / "policies" / "data"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _enum(schema: dict[str, Any], *path: str) -> set[str]:
    node: Any = schema
    for key in path:
        node = node[key]
    return set(node["enum"])


ENVELOPE = _json(SCHEMAS / "envelope.json")
CONSENT = _json(SCHEMAS / "requests" / "consent.json")["properties"]
RELATIONSHIP = _json(SCHEMAS / "requests" / "relationship.json")["properties"]
EVENT_SCHEMAS = [_json(p) for p in sorted((SCHEMAS / "events").glob("*.json"))]
VOCABULARY = _json(POLICY_DATA / "vocabulary" / "data.json")
MATRIX = _json(POLICY_DATA / "matrix" / "data.json")
PROPORTIONALITY = _json(POLICY_DATA / "proportionality" / "data.json")
BANDING = _json(POLICY_DATA / "banding" / "data.json")
CONSENT_RULES = _json(POLICY_DATA / "consent" / "data.json")
GROUNDS = {p.parent.name: _json(p) for p in sorted(POLICY_DATA.glob("grounds/*/data.json"))}


def _from_grounds(*fields: str) -> set[str]:
    """Every word the grounds' data use in ``fields`` (lists, lists of pairs, or null)."""
    out: set[str] = set()
    for ground in GROUNDS.values():
        for field in fields:
            for item in ground[field] or []:
                out |= set(item) if isinstance(item, list) else {item}
    return out


def _scopes_guarded() -> set[str]:
    """The scopes the API's guards ask for (``require("...")`` in broker/auth/deps.py)."""
    source = (REPO / "broker" / "auth" / "deps.py").read_text(encoding="utf-8")
    return set(re.findall(r'require\("([^"]+)"\)', source))


# vocabulary -> (sources that list all of it, sources that use part of it)
Sources = dict[str, set[str]]
VOCABULARIES: dict[str, tuple[Sources, Sources]] = {
    "categories": (
        {
            "schemas/categories.json": {
                e["const"] for e in _json(SCHEMAS / "categories.json")["oneOf"]
            },
            "schemas/requests/consent.json scope.categories": _enum(
                CONSENT, "scope", "properties", "categories", "items"
            ),
            "broker/registry/schemas.py Category": set(get_args(api.Category)),
            "policies/data/vocabulary categories": set(VOCABULARY["categories"]),
        },
        {
            "schemas/events x-category": {
                spec["x-category"] for s in EVENT_SCHEMAS for spec in s["properties"].values()
            },
            # "*" in a matrix cell stands for every known category (policies/samsyn/necessity.rego).
            "policies/data/matrix": {
                c for by_purpose in MATRIX.values() for cs in by_purpose.values() for c in cs
            }
            - {"*"},
            "policies/data/grounds excluded_categories": _from_grounds("excluded_categories"),
        },
    ),
    "organisation kinds": (
        {
            "schemas/requests/consent.json scope.from_kinds": _enum(
                CONSENT, "scope", "properties", "from_kinds", "items"
            ),
            "schemas/requests/consent.json scope.to_kinds": _enum(
                CONSENT, "scope", "properties", "to_kinds", "items"
            ),
            "broker/registry/schemas.py OrgKind": set(get_args(api.OrgKind)),
            "policies/data/vocabulary kinds": set(VOCABULARY["kinds"]),
        },
        {
            "policies/data/matrix": set(MATRIX),
            "policies/data/grounds kinds": _from_grounds(
                "source_kinds", "excluded_source_kinds", "recipient_kinds", "kind_pairs"
            ),
            "policies/data/banding exempt_recipient_kinds": set(BANDING["exempt_recipient_kinds"]),
            "policies/data/proportionality exceptions": {
                e["recipient_kind"] for e in PROPORTIONALITY["exceptions"]
            },
        },
    ),
    "relationship roles": (
        {
            "schemas/requests/relationship.json role": _enum(RELATIONSHIP, "role"),
            "broker/registry/schemas.py Role": set(get_args(api.Role)),
        },
        {
            "policies/data/proportionality": {
                *PROPORTIONALITY["close_circle_roles"],
                *(e["role"] for e in PROPORTIONALITY["exceptions"]),
            },
            "policies/data/grounds recipient_roles_any": _from_grounds("recipient_roles_any"),
        },
    ),
    "consent givers": (
        {
            "schemas/requests/consent.json given_by.role": _enum(
                CONSENT, "given_by", "items", "properties", "role"
            ),
            "broker/registry/schemas.py GivenBy.role": set(
                get_args(api.GivenBy.model_fields["role"].annotation)
            ),
        },
        {
            "policies/data/consent age_rules": {
                who for rule in CONSENT_RULES["age_rules"] for who in rule["required_given_by"]
            },
        },
    ),
    "purposes": (
        {
            "schemas/envelope.json purpose": _enum(ENVELOPE["properties"], "purpose"),
            "schemas/requests/consent.json scope.purposes": _enum(
                CONSENT, "scope", "properties", "purposes", "items"
            ),
            "broker/registry/schemas.py Purpose": set(get_args(api.Purpose)),
            "policies/data/vocabulary purposes": set(VOCABULARY["purposes"]),
            **{
                f"policies/data/matrix {kind}": set(by_purpose)
                for kind, by_purpose in MATRIX.items()
            },
        },
        {"policies/data/grounds purposes": _from_grounds("purposes")},
    ),
    "legal grounds": (
        {
            "schemas/envelope.json legalbasis": _enum(ENVELOPE["properties"], "legalbasis"),
            "policies/data/grounds/*": set(GROUNDS),
        },
        {},
    ),
    "scopes": (
        {
            "broker/registry/schemas.py Scope": set(get_args(api.Scope)),
            "broker/auth/tokens.py SCOPES": set(tokens.SCOPES),
            "broker/auth/deps.py guards": _scopes_guarded(),
        },
        {},
    ),
}


@pytest.mark.parametrize("name", VOCABULARIES)
def test_every_full_list_names_the_same_words(name: str) -> None:
    full, _ = VOCABULARIES[name]
    reference_source, reference = next(iter(full.items()))
    assert reference, f"{reference_source} lists no {name}"
    for source, words in full.items():
        assert words == reference, (
            f"{name}: {source} differs from {reference_source}: "
            f"missing {sorted(reference - words)}, extra {sorted(words - reference)}"
        )


@pytest.mark.parametrize("name", VOCABULARIES)
def test_every_partial_use_stays_within_the_vocabulary(name: str) -> None:
    full, within = VOCABULARIES[name]
    reference = next(iter(full.values()))
    for source, words in within.items():
        assert words, f"{source} uses no {name}: the test reads the wrong place"
        assert words <= reference, f"{name}: {source} uses unknown {sorted(words - reference)}"
