package samsyn.scenarios_test

# The eight sharing scenarios of /work/shared/scenarios, at the policy level: each scenario's
# organisations, relationships, consent and event become the router's input, and its
# expectations become decisions. "fields" in a scenario become categories (the router
# projects fields by category); band values become band_label checks. Organisations that the
# scenario gives no relationship are not candidates for the router; where the scenario
# expects them to get nothing they are added here with no roles, to show that the policy
# would deny them too. Steps that happen before the policy (403, 409, 404 at the API) have
# their policy-level counterpart noted in the test.

import data.samsyn.banding
import data.samsyn.fixtures_test as fx

yesterday := "2026-11-25T10:00:00Z"

in_180_days := "2027-05-25T10:00:00Z"

scope(from_kinds, to_kinds, cats, purposes) := {
	"from_kinds": from_kinds, "from_orgs": [],
	"to_kinds": to_kinds, "to_orgs": [],
	"categories": cats, "purposes": purposes,
}

guardian_consent(s) := {
	"subject_matches": true,
	"withdrawn": false,
	"valid_from": yesterday,
	"valid_until": in_180_days,
	"given_by": ["guardian"],
	"scope": s,
}

org(id, kind, municipality, roles) := {"org": id, "kind": kind, "municipality": municipality, "roles": roles}

# ---------------------------------------------------------------------------------------------
# 01 School shares problematic absence with the health centre under the guardians' consent;
# the health centre sees bands, not exact figures; police and unrelated social services get
# nothing.

s01 := {
	"ref": "e1",
	"type": "attendance.flagged",
	"source": {"org": "skola", "kind": "school"},
	"purpose": "early_support",
	"legal_basis": "consent",
	"report_municipality": null,
	"age": 10,
	"categories": ["attendance"],
	"fields": {
		"period_start": "attendance", "period_end": "attendance",
		"absence_percent": "attendance", "unexcused_percent": "attendance",
	},
	"consent": guardian_consent(scope(
		["school"], ["health", "social_services"],
		["attendance", "wellbeing", "concern"], ["early_support"],
	)),
	"candidates": [
		org("vc", "health", null, ["listed", "barnteam_member"]),
		org("polis", "police", null, ["case_open"]),
		org("soc", "social_services", "1492", []),
	],
}

test_s01_health_centre_gets_banded_attendance if {
	d := fx.decision(s01, "vc")
	fx.allowed(d)
	d.legal_ground == "consent"
	d.categories == ["attendance", "identity"]
	{t.field | some t in d.transforms} == {"absence_percent", "unexcused_percent"}
	every t in d.transforms {
		banding.band_label(t.bands, 23.5) == "20-50"
		banding.band_label(t.bands, 12.0) == "10-20"
	}
}

test_s01_police_get_nothing if {
	fx.denied(fx.decision(s01, "polis"), "consent_recipient_out_of_scope")
}

test_s01_unrelated_social_services_get_nothing if {
	fx.denied(fx.decision(s01, "soc"), "no_relationship")
}

# ---------------------------------------------------------------------------------------------
# 02 A consent that starts next week opens nothing today.

s02 := {
	"ref": "e1",
	"type": "wellbeing.assessed",
	"source": {"org": "skola", "kind": "school"},
	"purpose": "early_support",
	"legal_basis": "consent",
	"report_municipality": null,
	"age": 9,
	"categories": ["wellbeing"],
	"fields": {"ratings": "wellbeing"},
	"consent": fx.with_keys(
		guardian_consent(scope(["school"], ["health"], ["wellbeing"], ["early_support"])),
		{"valid_from": "2026-12-03T10:00:00Z", "valid_until": "2027-02-24T10:00:00Z"},
	),
	"candidates": [org("vc", "health", null, ["barnteam_member"])],
}

test_s02_future_consent_shares_nothing if {
	d := fx.decision(s02, "vc")
	fx.denied(d, "consent_not_yet_valid")
	d.reasons == ["consent_not_yet_valid"]
}

# ---------------------------------------------------------------------------------------------
# 03 The guardians consent to health information going to student health, but not to
# diagnoses or notes.

s03 := {
	"ref": "e1",
	"type": "health.contact",
	"source": {"org": "vc", "kind": "health"},
	"purpose": "early_support",
	"legal_basis": "consent",
	"report_municipality": null,
	"age": 9,
	"categories": ["health", "health_detail"],
	"fields": {
		"service": "health", "reason_area": "health", "referral": "health",
		"diagnosis_codes": "health_detail", "note": "health_detail",
	},
	"consent": guardian_consent(scope(["health"], ["student_health"], ["health"], ["early_support"])),
	"candidates": [org("eh", "student_health", "1492", ["barnteam_member"])],
}

test_s03_student_health_gets_health_without_detail if {
	d := fx.decision(s03, "eh")
	fx.allowed(d)
	d.legal_ground == "consent"
	d.categories == ["health", "identity"]
	d.withheld == ["health_detail"]
}

# ---------------------------------------------------------------------------------------------
# 04 An orosanmälan goes to the social services of the school's municipality, whole, without
# consent, and to no one else.

s04 := {
	"ref": "e1",
	"type": "mandatory.report",
	"source": {"org": "skola", "kind": "school"},
	"purpose": "mandatory_report",
	"legal_basis": "mandatory_report",
	"report_municipality": "1460",
	"age": 7,
	"categories": ["concern", "concern_detail"],
	"fields": {"areas": "concern", "urgency": "concern", "description": "concern_detail"},
	"consent": null,
	"candidates": [
		org("soc", "social_services", "1460", []),
		org("soc_annan", "social_services", "1492", []),
		org("vc", "health", null, ["listed", "barnteam_member"]),
		org("polis", "police", null, ["case_open"]),
	],
}

test_s04_local_social_services_get_the_whole_report if {
	d := fx.decision(s04, "soc")
	fx.allowed(d)
	d.legal_ground == "mandatory_report"
	d.categories == ["concern", "concern_detail", "identity"]
	d.withheld == []
}

test_s04_no_one_else_gets_the_report if {
	fx.denied(fx.decision(s04, "soc_annan"), "not_report_municipality")
	fx.denied(fx.decision(s04, "vc"), "recipient_kind_not_allowed")
	fx.denied(fx.decision(s04, "polis"), "recipient_kind_not_allowed")
}

# ---------------------------------------------------------------------------------------------
# 05 Police share a risk observation about a 16-year-old with school and social services
# under OSL 10:18 a; details stay with the police; health care gets nothing.

s05 := {
	"ref": "e1",
	"type": "police.observation",
	"source": {"org": "polis", "kind": "police"},
	"purpose": "crime_prevention",
	"legal_basis": "crime_prevention_u21",
	"report_municipality": null,
	"age": 16,
	"categories": ["police", "police_detail"],
	"fields": {
		"kind": "police", "offence_code": "police_detail",
		"place": "police_detail", "note": "police_detail",
	},
	"consent": null,
	"candidates": [
		org("skola", "school", "1461", ["enrolled"]),
		org("soc", "social_services", "1461", ["case_open"]),
		org("vc", "health", null, ["listed"]),
	],
}

test_s05_school_and_social_services_get_the_kind_only if {
	every recipient in ["skola", "soc"] {
		d := fx.decision(s05, recipient)
		fx.allowed(d)
		d.legal_ground == "crime_prevention_u21"
		d.categories == ["identity", "police"]
		d.withheld == ["police_detail"]
	}
}

test_s05_health_care_gets_nothing if {
	fx.denied(fx.decision(s05, "vc"), "recipient_kind_not_allowed")
}

# ---------------------------------------------------------------------------------------------
# 06 After the guardians withdraw consent nothing more is shared under it. (The withdrawal
# notice to the recipient is the broker's, not the policy's.)

s06_consent := guardian_consent(scope(
	["school"], ["health"],
	["wellbeing", "concern", "concern_detail"], ["early_support"],
))

s06_e1 := {
	"ref": "e1",
	"type": "wellbeing.assessed",
	"source": {"org": "skola", "kind": "school"},
	"purpose": "early_support",
	"legal_basis": "consent",
	"report_municipality": null,
	"age": 12,
	"categories": ["wellbeing", "concern_detail"],
	"fields": {"ratings": "wellbeing", "summary": "concern_detail"},
	"consent": s06_consent,
	"candidates": [org("vc", "health", null, ["listed", "barnteam_member"])],
}

s06_e2 := fx.with_keys(s06_e1, {
	"ref": "e2",
	"type": "concern.raised",
	"categories": ["concern", "concern_detail"],
	"fields": {
		"areas": "concern", "level": "concern",
		"raised_by_role": "concern", "description": "concern_detail",
	},
	"consent": fx.with_keys(s06_consent, {"withdrawn": true}),
})

test_s06_before_withdrawal_shared if {
	d := fx.decision(s06_e1, "vc")
	fx.allowed(d)
	d.legal_ground == "consent"
	d.categories == ["concern_detail", "identity", "wellbeing"]
}

test_s06_after_withdrawal_nothing if {
	d := fx.decision(s06_e2, "vc")
	fx.denied(d, "consent_withdrawn")
	d.reasons == ["consent_withdrawn"]
}

# ---------------------------------------------------------------------------------------------
# 07 An organisation with no part in a child's life sees nothing. (The 404s for reading the
# child or another's event are the API's.)

s07 := {
	"ref": "e1",
	"type": "wellbeing.assessed",
	"source": {"org": "skola", "kind": "school"},
	"purpose": "early_support",
	"legal_basis": "consent",
	"report_municipality": null,
	"age": 8,
	"categories": ["wellbeing"],
	"fields": {"ratings": "wellbeing"},
	"consent": guardian_consent(scope(["school"], ["health", "school"], ["wellbeing"], ["early_support"])),
	"candidates": [
		org("vc", "health", null, ["listed", "barnteam_member"]),
		org("annan", "school", "1460", []),
	],
}

test_s07_related_health_centre_gets_ratings if {
	d := fx.decision(s07, "vc")
	fx.allowed(d)
	d.categories == ["identity", "wellbeing"]
}

test_s07_unrelated_school_gets_nothing if {
	fx.denied(fx.decision(s07, "annan"), "no_relationship")
}

# ---------------------------------------------------------------------------------------------
# 08 A client cannot publish as another organisation; the same event id twice is one event.
# (The 403 for a spoofed source and the 409 for a changed body are ingest's.)

s08 := {
	"ref": "e2",
	"type": "concern.raised",
	"source": {"org": "skola", "kind": "school"},
	"purpose": "early_support",
	"legal_basis": "consent",
	"report_municipality": null,
	"age": 11,
	"categories": ["concern"],
	"fields": {"areas": "concern", "level": "concern", "raised_by_role": "concern"},
	"consent": guardian_consent(scope(["school"], ["health"], ["concern"], ["early_support"])),
	"candidates": [org("vc", "health", null, ["listed", "barnteam_member"])],
}

test_s08_genuine_event_shared if {
	d := fx.decision(s08, "vc")
	fx.allowed(d)
	d.categories == ["concern", "identity"]
}

# Had the spoofed event (source vc) reached the policy, vc would be its own source and the
# school's consent would not name a health source.
test_s08_spoofed_source_would_share_nothing if {
	spoofed := fx.with_keys(s08, {"ref": "e1", "source": {"org": "vc", "kind": "health"}})
	d := fx.decision(spoofed, "vc")
	fx.denied(d, "recipient_is_source")
	fx.denied(d, "consent_source_out_of_scope")
}

# The same event twice in one batch is not delivered twice.
test_s08_duplicate_in_a_batch_not_delivered if {
	out := fx.decide_batch([s08, s08])
	out.e2.vc.allow == false
	out.e2.vc.reasons == ["duplicate_event_ref"]
}
