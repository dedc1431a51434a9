"""Cut an event's ``data`` down to the allowed categories and apply the policy's transforms.

The field-to-category map comes from the schema's ``x-category``; transforms come from the policy.
A transform the projector does not know drops its field: never send a value untransformed.
"""

from __future__ import annotations

from typing import Any


def band(value: Any, bands: list[dict[str, Any]]) -> str | None:
    """The label of the band whose lower bound is inclusive and upper bound exclusive."""
    if not isinstance(value, int | float):
        return None
    for b in bands:
        low, high = b.get("min"), b.get("max")
        if (low is None or value >= low) and (high is None or value < high):
            return str(b["label"])
    return None


class Projection:
    """One decision's projection, read from the decision once: the router applies each distinct
    decision of a batch to many events (pairs share the policy's Decision objects)."""

    __slots__ = ("allowed", "transforms")

    def __init__(self, decision: dict[str, Any]) -> None:
        self.allowed = set(decision.get("categories") or [])
        # (field, its bands, or None for a transform that is not banding: the field is dropped)
        self.transforms = [
            (t.get("field"), (t.get("bands") or []) if t.get("op") == "band" else None)
            for t in decision.get("transforms") or []
        ]

    def __call__(self, data: dict[str, Any], field_categories: dict[str, str]) -> dict[str, Any]:
        out = {f: v for f, v in data.items() if field_categories.get(f) in self.allowed}
        for field, bands in self.transforms:
            if field not in out:
                continue
            banded = band(out[field], bands) if bands is not None else None
            if banded is None:
                del out[field]
            else:
                out[field] = banded
        return out


def project(
    data: dict[str, Any], field_categories: dict[str, str], decision: dict[str, Any]
) -> dict[str, Any]:
    return Projection(decision)(data, field_categories)
