"""The projector: only allowed categories leave, and transforms never let a raw value through."""

from __future__ import annotations

from broker.policy.projector import band, project

BANDS = [
    {"label": "<10", "min": 0, "max": 10},
    {"label": "10-20", "min": 10, "max": 20},
    {"label": "20-50", "min": 20, "max": 50},
    {"label": ">=50", "min": 50, "max": None},
]
FIELDS = {"period_start": "attendance", "absence_percent": "attendance", "note": "health_detail"}


def test_band_lower_bound_is_inclusive() -> None:
    """10 is in 10-20 and 50 in >=50: the lower bound of a band is inclusive."""
    assert band(9.99, BANDS) == "<10"
    assert band(10, BANDS) == "10-20"
    assert band(49.9, BANDS) == "20-50"
    assert band(50, BANDS) == ">=50"
    assert band(100, BANDS) == ">=50"


def test_only_allowed_categories_are_projected() -> None:
    """Fields of categories the decision does not list are cut."""
    data = {"period_start": "2026-10-01", "absence_percent": 23.5, "note": "x"}
    out = project(data, FIELDS, {"categories": ["identity", "attendance"], "transforms": []})
    assert out == {"period_start": "2026-10-01", "absence_percent": 23.5}


def test_band_transform_replaces_the_value() -> None:
    """A banded field carries the band label, never the exact figure."""
    data = {"absence_percent": 23.5}
    decision = {
        "categories": ["attendance"],
        "transforms": [{"field": "absence_percent", "op": "band", "bands": BANDS}],
    }
    assert project(data, FIELDS, decision) == {"absence_percent": "20-50"}


def test_unknown_transform_drops_the_field() -> None:
    """A transform the projector does not know fails closed: the field is not sent at all."""
    data = {"absence_percent": 23.5, "period_start": "2026-10-01"}
    decision = {
        "categories": ["attendance"],
        "transforms": [{"field": "absence_percent", "op": "round"}],
    }
    assert project(data, FIELDS, decision) == {"period_start": "2026-10-01"}


def test_field_without_category_never_leaves() -> None:
    """A field the schema does not tag is never projected, whatever the decision says."""
    out = project({"surprise": 1}, FIELDS, {"categories": ["attendance", "identity"]})
    assert out == {}
