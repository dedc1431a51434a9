"""One example per request body in the OpenAPI document, taken from the demo's story
(``broker/demo/story.py``): Åmål's school, a fictional child (serial 981), the guardians'
consent and the teacher's concern."""

from __future__ import annotations

from typing import Any

from broker.demo.story import SCHOOL

CHILD = "201206159814"  # fictional: serial 981, the README's walk-through child
CONSENT_ID = "6f1d2c3b-8a4e-4f5a-9b6c-7d8e9f0a1b2c"

RELATIONSHIP: dict[str, Any] = {
    "subject": CHILD,
    "role": "enrolled",
    "valid_from": "2026-08-15T00:00:00Z",
}
CONSENT: dict[str, Any] = {
    "subject": CHILD,
    "given_by": [{"role": "guardian"}],
    "scope": {
        "from_kinds": ["school", "health", "social_services"],
        "to_kinds": ["student_health", "health", "school"],
        "categories": ["concern", "concern_detail", "attendance", "health", "plan", "wellbeing"],
        "purposes": ["early_support", "child_plan"],
    },
    "valid_from": "2026-08-15T00:00:00Z",
    "valid_until": "2027-08-15T00:00:00Z",
}
EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "2b7f4a52-5c1e-4d0b-9a53-0c6f1e9d2a10",
    "source": f"org/{SCHOOL}",
    "type": "se.backabarnet.concern.raised.v1",
    "time": "2026-09-14T09:30:00Z",
    "subject": CHILD,
    "datacontenttype": "application/json",
    "purpose": "early_support",
    "legalbasis": "consent",
    "consentref": CONSENT_ID,
    "data": {
        "areas": ["trygghet", "tillhorighet"],
        "level": 2,
        "raised_by_role": "teacher",
        "description": "Ensam på raster, ofta ledsen (fiktivt exempel).",
    },
}
REQUESTS: dict[str, dict[str, Any]] = {"relationship": RELATIONSHIP, "consent": CONSENT}
