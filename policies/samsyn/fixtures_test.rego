# METADATA
# title: Test fixtures
# description: |
#   Inputs shared by the test packages: a well-formed event under consent, builders for
#   candidates, consents and categories, and the query as the router sends it. No tests here.
package samsyn.fixtures_test

import data.samsyn.ceiling
import data.samsyn.decide

now := "2026-11-26T10:00:00Z"

agency_kinds := ["preschool", "school", "student_health", "social_services", "health", "police"]

purposes := [
	"early_support", "child_plan", "crime_prevention",
	"mandatory_report", "social_services_inquiry", "emergency",
]

# Every category an event can carry (identity is added by the policy).
all_categories := [
	"attendance", "education_support", "wellbeing", "concern", "concern_detail",
	"health", "health_detail", "social", "social_detail", "police", "police_detail", "plan",
]

# A consent that covers everything from a school to any agency, given by a guardian.
consent(overrides) := object.union(
	{
		"subject_matches": true,
		"withdrawn": false,
		"valid_from": "2026-11-01T00:00:00Z",
		"valid_until": "2027-05-01T00:00:00Z",
		"given_by": ["guardian"],
		"scope": {
			"from_kinds": ["school"],
			"from_orgs": [],
			"to_kinds": agency_kinds,
			"to_orgs": [],
			"categories": all_categories,
			"purposes": purposes,
		},
	},
	overrides,
)

candidate(org, kind, roles) := {"org": org, "kind": kind, "municipality": "1492", "roles": roles}

# obj with the top-level keys of overrides replaced (object.union would merge nested objects).
with_keys(obj, overrides) := object.union(object.remove(obj, object.keys(overrides)), overrides)

# A concern raised by a school, shared under the guardian's consent with the health centre,
# a member of the child's barnteam. Allowed as it stands. Top-level keys of overrides replace.
event(overrides) := with_keys(
	{
		"ref": "e1",
		"type": "concern.raised",
		"source": {"org": "skola", "kind": "school", "municipality": "1492"},
		"purpose": "early_support",
		"legal_basis": "consent",
		"municipality_extension": null,
		"age": 10,
		"categories": ["concern"],
		"fields": {"areas": "concern", "level": "concern"},
		"consent": consent({}),
		"candidates": [candidate("vc", "health", ["listed", "barnteam_member"])],
	},
	overrides,
)

# One synthetic field per category, so that fields and categories agree.
fields_for(cats) := {sprintf("f_%s", [cat]): cat | some cat in cats}

with_categories(e, cats) := with_keys(e, {"categories": cats, "fields": fields_for(cats)})

# The ceiling's grounds with a test ground added at its own record (a new ground needs its
# ceiling: without one the data exceeds the ceiling).
ceiling_with(name, g) := object.union(ceiling.grounds, {name: g})

# The router's query for a batch of events (indexed_decisions), read back as event ref ->
# candidate org -> Decision, as the router reads it.
decide_batch(events) := {ref: {org: answer.table[i] | some org, i in per_org} | some ref, per_org in answer.pairs} if {
	answer := decide.indexed_decisions with input as {"now": now, "events": events}
}

# The decision for one event and one candidate organisation.
decision(e, org) := decide_batch([e])[e.ref][org]

# The decision for an event with a single candidate.
only(e, c) := decision(with_keys(e, {"candidates": [c]}), c.org)

allowed(d) if {
	d.allow == true
	d.reasons == []
	"identity" in d.categories
}

denied(d, reason) if {
	d.allow == false
	d.categories == []
	d.transforms == []
	reason in d.reasons
}

# ---------------------------------------------------------------------------------------------
# The contract's necessity matrix (CONTRACT.md section 6): the ceiling's, which the data may
# narrow but never widen (samsyn.ceiling); the shipped data is at the ceiling.

contract_matrix := ceiling.matrix
