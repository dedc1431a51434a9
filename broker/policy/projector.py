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


def project(
    data: dict[str, Any], field_categories: dict[str, str], decision: dict[str, Any]
) -> dict[str, Any]:
    allowed = set(decision.get("categories") or [])
    out = {f: v for f, v in data.items() if field_categories.get(f) in allowed}
    for transform in decision.get("transforms") or []:
        field = transform.get("field")
        if field not in out:
            continue
        banded = (
            band(out[field], transform.get("bands") or [])
            if (transform.get("op") == "band")
            else None
        )
        if banded is None:
            del out[field]
        else:
            out[field] = banded
    return out
