"""Request and response bodies of the registry endpoints (pydantic, strict)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

OrgKind = Literal[
    "preschool", "school", "student_health", "social_services", "health", "police", "oversight"
]
Scope = Literal[
    "events:publish",
    "feed:read",
    "relationships:write",
    "consents:write",
    "audit:read",
    "followup:read",
    "admin",
]
Role = Literal[
    "enrolled",
    "listed",
    "case_open",
    "barnkontakt",
    "barnteam_member",
    "stodsamordnare",
    "sip_participant",
]
Category = Literal[
    "identity",
    "attendance",
    "education_support",
    "wellbeing",
    "concern",
    "concern_detail",
    "health",
    "health_detail",
    "social",
    "social_detail",
    "police",
    "police_detail",
    "plan",
]
Purpose = Literal[
    "early_support",
    "child_plan",
    "mandatory_report",
    "crime_prevention",
    "emergency",
    "social_services_inquiry",
]
OrgId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$")]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2026-11-23T08:00:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationIn(Strict):
    id: OrgId
    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind
    municipality: str | None = Field(default=None, pattern=r"^[0-9]{4}$")


class OrganisationOut(OrganisationIn):
    pass


class ClientIn(Strict):
    org: OrgId
    scopes: list[Scope] = Field(min_length=1)


class ClientOut(Strict):
    client_id: str
    client_secret: str
    org: str
    scopes: list[str]


# Who gives or withdraws a consent: a guardian (vårdnadshavare), the second guardian (joint
# custody), or the child.
ConsentParty = Literal["guardian", "second_guardian", "child"]


class GivenBy(Strict):
    role: ConsentParty


class WithdrawalIn(Strict):
    withdrawn_by: ConsentParty | None = Field(
        default=None, description="Who withdrew the consent: guardian, second_guardian or child"
    )


class ConsentScope(Strict):
    from_kinds: list[OrgKind] = Field(default_factory=list)
    from_orgs: list[OrgId] = Field(default_factory=list)
    to_kinds: list[OrgKind] = Field(default_factory=list)
    to_orgs: list[OrgId] = Field(default_factory=list)
    categories: list[Category] = Field(min_length=1)
    purposes: list[Purpose] = Field(min_length=1)


class ConsentIn(Strict):
    subject: str = Field(description="The child's personnummer (12 or 10 digits).")
    given_by: list[GivenBy] = Field(min_length=1)
    scope: ConsentScope
    valid_from: AwareDatetime
    valid_until: AwareDatetime


class RelationshipIn(Strict):
    subject: str = Field(description="The child's personnummer (12 or 10 digits).")
    role: Role
    org: OrgId | None = Field(
        default=None,
        description="Another organisation, for a barnkontakt convening it as barnteam_member; "
        "the caller's own organisation when left out.",
    )
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None


class Created(Strict):
    id: str


class Ended(Strict):
    id: str
    status: str
