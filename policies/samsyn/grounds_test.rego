package samsyn.grounds_test

import data.samsyn.fixtures_test as fx
import data.samsyn.grounds

# ---------------------------------------------------------------------------------------------
# consent (OSL 12 kap 2 §); the consent's own checks are in consent_test.rego

# A school's concern goes to the health centre in the child's barnteam under the consent.
test_consent_allows_within_scope if {
	d := fx.decision(fx.event({}), "vc")
	fx.allowed(d)
	d.legal_ground == "consent"
	d.statute == "OSL 12 kap 2 §"
	d.categories == ["concern", "identity"]
	d.obligations == []
}

# Without an active relationship the recipient gets nothing, consent or not.
test_consent_denies_without_relationship if {
	d := fx.only(fx.event({}), fx.candidate("vc", "health", []))
	fx.denied(d, "no_relationship")
	d.legal_ground == "consent"
}

# ---------------------------------------------------------------------------------------------
# mandatory_report (orosanmälan)

report := fx.event({
	"type": "mandatory.report",
	"source": {"org": "skola", "kind": "school"},
	"purpose": "mandatory_report",
	"legal_basis": "mandatory_report",
	"report_municipality": "1460",
	"age": 7,
	"categories": ["concern", "concern_detail"],
	"fields": {"areas": "concern", "urgency": "concern", "description": "concern_detail"},
	"consent": null,
})

local_soc := {"org": "soc", "kind": "social_services", "municipality": "1460", "roles": []}

# The whole report goes to the local social services, with no relationship and no consent.
test_mandatory_report_allows_local_social_services if {
	d := fx.only(report, local_soc)
	fx.allowed(d)
	d.legal_ground == "mandatory_report"
	d.categories == ["concern", "concern_detail", "identity"]
	d.withheld == []
}

# Social services of another municipality get nothing, even with an open case.
test_mandatory_report_denies_other_municipality if {
	c := {"org": "soc2", "kind": "social_services", "municipality": "1492", "roles": ["case_open"]}
	fx.denied(fx.only(report, c), "not_report_municipality")
}

# Without a report municipality no one can receive the report.
test_mandatory_report_denies_without_report_municipality if {
	e := fx.with_keys(report, {"report_municipality": null})
	fx.denied(fx.only(e, local_soc), "not_report_municipality")
}

# Only social services receive a report: not the health centre in the child's barnteam.
test_mandatory_report_denies_other_kinds if {
	c := {"org": "vc", "kind": "health", "municipality": "1460", "roles": ["listed", "barnteam_member"]}
	fx.denied(fx.only(report, c), "recipient_kind_not_allowed")
}

# The ground carries reports only, not early support.
test_mandatory_report_denies_other_purpose if {
	e := fx.with_keys(report, {"purpose": "early_support"})
	fx.denied(fx.only(e, local_soc), "purpose_not_allowed_for_ground")
}

# ---------------------------------------------------------------------------------------------
# crime_prevention_u21 (OSL 10 kap 18 a §)

observation := fx.event({
	"type": "police.observation",
	"source": {"org": "polis", "kind": "police"},
	"purpose": "crime_prevention",
	"legal_basis": "crime_prevention_u21",
	"age": 16,
	"categories": ["police", "police_detail"],
	"fields": {"kind": "police", "offence_code": "police_detail", "place": "police_detail"},
	"consent": null,
})

school := fx.candidate("skola", "school", ["enrolled"])

# The police tell the school of a risk; the details stay with the police (matrix).
test_crime_prevention_allows_police_to_school if {
	d := fx.only(observation, school)
	fx.allowed(d)
	d.legal_ground == "crime_prevention_u21"
	d.statute == "OSL 10 kap 18 a §"
	d.categories == ["identity", "police"]
	d.withheld == ["police_detail"]
}

# 20 is under 21.
test_crime_prevention_allows_age_20 if {
	fx.allowed(fx.only(fx.with_keys(observation, {"age": 20}), school))
}

# 21 is not under 21.
test_crime_prevention_denies_age_21 if {
	fx.denied(fx.only(fx.with_keys(observation, {"age": 21}), school), "age_limit_exceeded")
}

# An unknown age cannot be shown to be under 21.
test_crime_prevention_denies_unknown_age if {
	fx.denied(fx.only(fx.with_keys(observation, {"age": null}), school), "age_limit_exceeded")
}

# Health care is outside the circle of school, social services and police.
test_crime_prevention_denies_health_recipient if {
	c := fx.candidate("vc", "health", ["listed"])
	fx.denied(fx.only(observation, c), "recipient_kind_not_allowed")
}

# Nothing from health care or student health, under this ground.
test_crime_prevention_denies_health_sources if {
	every kind in ["health", "student_health"] {
		e := fx.with_categories(
			fx.with_keys(observation, {"source": {"org": "src", "kind": kind}}),
			["concern"],
		)
		fx.denied(fx.only(e, school), "source_kind_not_allowed")
	}
}

# The ground is for preventing crime, not for early support.
test_crime_prevention_denies_other_purpose if {
	e := fx.with_keys(observation, {"purpose": "early_support"})
	fx.denied(fx.only(e, school), "purpose_not_allowed_for_ground")
}

# health, health_detail and social_detail never go under this ground, even if a municipality
# widened the matrix by mistake.
test_crime_prevention_cuts_excluded_categories if {
	e := fx.with_categories(
		fx.with_keys(observation, {"source": {"org": "soc", "kind": "social_services"}}),
		["social", "social_detail", "health", "health_detail"],
	)
	c := fx.candidate("polis", "police", ["case_open", "barnteam_member"])
	d := fx.only(e, c) with data.data.matrix.police.crime_prevention as ["*"]
	fx.allowed(d)
	d.categories == ["identity", "social"]
	d.withheld == ["health", "health_detail", "social_detail"]
}

# ---------------------------------------------------------------------------------------------
# social_services_inquiry

inquiry := fx.event({
	"purpose": "social_services_inquiry",
	"legal_basis": "social_services_inquiry",
	"categories": ["attendance", "concern_detail"],
	"fields": {"absence_percent": "attendance", "description": "concern_detail"},
	"consent": null,
})

# The school answers social services' investigation, in full.
test_social_services_inquiry_allows_case_open if {
	d := fx.only(inquiry, fx.candidate("soc", "social_services", ["case_open"]))
	fx.allowed(d)
	d.legal_ground == "social_services_inquiry"
	d.categories == ["attendance", "concern_detail", "identity"]
}

# Social services without an open case are not investigating.
test_social_services_inquiry_denies_without_case_open if {
	c := fx.candidate("soc", "social_services", ["barnteam_member"])
	fx.denied(fx.only(inquiry, c), "recipient_role_missing")
}

# Only social services inquire.
test_social_services_inquiry_denies_other_kinds if {
	c := fx.candidate("polis", "police", ["case_open"])
	fx.denied(fx.only(inquiry, c), "recipient_kind_not_allowed")
}

# ---------------------------------------------------------------------------------------------
# care_support_u18 (OSL 25 kap 12 §, 26 kap 9 §)

care := fx.event({
	"type": "health.contact",
	"source": {"org": "vc", "kind": "health"},
	"purpose": "child_plan",
	"legal_basis": "care_support_u18",
	"age": 12,
	"categories": ["health", "health_detail"],
	"fields": {"service": "health", "referral": "health", "diagnosis_codes": "health_detail"},
	"consent": null,
})

soc_case := fx.candidate("soc", "social_services", ["case_open"])

# Health care tells social services what the child's support needs; diagnoses are not in
# social services' cell of the matrix.
test_care_support_allows_health_to_social_services if {
	d := fx.only(care, soc_case)
	fx.allowed(d)
	d.legal_ground == "care_support_u18"
	d.categories == ["health", "identity"]
	d.withheld == ["health_detail"]
}

# The other way: social services to the health centre in the barnteam.
test_care_support_allows_social_services_to_health if {
	e := fx.with_categories(
		fx.with_keys(care, {"source": {"org": "soc", "kind": "social_services"}, "purpose": "early_support"}),
		["concern", "concern_detail", "social"],
	)
	d := fx.only(e, fx.candidate("vc", "health", ["listed", "barnteam_member"]))
	fx.allowed(d)
	d.categories == ["concern", "concern_detail", "identity"]
	d.withheld == ["social"]
}

# 17 is under 18.
test_care_support_allows_age_17 if {
	fx.allowed(fx.only(fx.with_keys(care, {"age": 17}), soc_case))
}

# 18 is not under 18.
test_care_support_denies_age_18 if {
	fx.denied(fx.only(fx.with_keys(care, {"age": 18}), soc_case), "age_limit_exceeded")
}

# Between health care and social services only: not school to social services.
test_care_support_denies_school_source if {
	e := fx.with_categories(fx.with_keys(care, {"source": {"org": "skola", "kind": "school"}}), ["concern"])
	d := fx.only(e, soc_case)
	fx.denied(d, "source_kind_not_allowed")
	fx.denied(d, "kind_pair_not_allowed")
}

# Not health care to health care: the pair must cross the two secrecy areas.
test_care_support_denies_health_to_health if {
	d := fx.only(care, fx.candidate("bup", "health", ["listed"]))
	fx.denied(d, "kind_pair_not_allowed")
}

# Care and support, not crime prevention.
test_care_support_denies_other_purpose if {
	e := fx.with_keys(care, {"purpose": "crime_prevention"})
	fx.denied(fx.only(e, soc_case), "purpose_not_allowed_for_ground")
}

# ---------------------------------------------------------------------------------------------
# emergency

acute := fx.event({
	"purpose": "emergency",
	"legal_basis": "emergency",
	"categories": ["concern", "concern_detail"],
	"fields": {"areas": "concern", "description": "concern_detail"},
	"consent": null,
})

# In an acute danger the police get everything, and the source is told and the disclosure
# reviewed.
test_emergency_allows_police_with_obligations if {
	d := fx.only(acute, fx.candidate("polis", "police", ["case_open"]))
	fx.allowed(d)
	d.legal_ground == "emergency"
	d.categories == ["concern", "concern_detail", "identity"]
	d.obligations == ["notify_source", "review"]
}

# Emergency disclosures go to social services, police or health care only.
test_emergency_denies_school if {
	d := fx.only(acute, fx.candidate("skola2", "school", ["enrolled", "barnteam_member"]))
	fx.denied(d, "recipient_kind_not_allowed")
	d.obligations == []
}

# Even in an emergency the recipient must be related to the child.
test_emergency_denies_without_relationship if {
	fx.denied(fx.only(acute, fx.candidate("vc", "health", [])), "no_relationship")
}

# The emergency ground carries the emergency purpose only.
test_emergency_denies_other_purpose if {
	e := fx.with_keys(acute, {"purpose": "early_support"})
	fx.denied(fx.only(e, fx.candidate("vc", "health", ["listed"])), "purpose_not_allowed_for_ground")
}

# ---------------------------------------------------------------------------------------------
# grounds as data

# An event naming no known ground shares nothing.
test_unknown_ground_denies if {
	d := fx.decision(fx.event({"legal_basis": "legitimate_interest"}), "vc")
	d.reasons == ["unknown_ground"]
	fx.denied(d, "unknown_ground")
	d.legal_ground == "legitimate_interest"
	d.statute == null
}

police_duty := {
	"statute": "test statute",
	"purposes": ["crime_prevention"],
	"source_kinds": ["school"],
	"excluded_source_kinds": [],
	"recipient_kinds": ["police"],
	"kind_pairs": null,
	"age_below": null,
	"requires_consent": false,
	"requires_relationship": true,
	"recipient_in_report_municipality": false,
	"recipient_roles_any": null,
	"excluded_categories": [],
	"proportionality": true,
	"obligations": ["review"],
}

duty_event := fx.event({
	"purpose": "crime_prevention",
	"legal_basis": "police_duty",
	"age": 25,
	"categories": ["concern", "concern_detail"],
	"fields": {"areas": "concern", "description": "concern_detail"},
	"consent": null,
})

# A newly enacted duty is a new record: no code changes, and the generic rules apply to it
# (here proportionality keeps the detail from a police without a close-circle role).
test_new_ground_by_data_allows if {
	d := fx.only(duty_event, fx.candidate("polis", "police", ["case_open"])) with data.data.grounds.police_duty as police_duty
	fx.allowed(d)
	d.legal_ground == "police_duty"
	d.statute == "test statute"
	d.categories == ["concern", "identity"]
	d.withheld == ["concern_detail"]
	d.obligations == ["review"]
}

# The same new ground denies what its record does not name.
test_new_ground_by_data_denies if {
	d := fx.only(duty_event, fx.candidate("soc", "social_services", ["case_open"])) with data.data.grounds.police_duty as police_duty
	fx.denied(d, "recipient_kind_not_allowed")
}

# A ground record with a field missing is not evaluated at all.
test_malformed_ground_denies if {
	d := fx.only(duty_event, fx.candidate("polis", "police", ["case_open"])) with data.data.grounds.police_duty as object.remove(police_duty, ["requires_consent"])
	d.reasons == ["ground_malformed"]
}

# A municipality tightens a ground by editing its record: emergency without the police.
test_tightened_ground_denies if {
	d := fx.only(acute, fx.candidate("polis", "police", ["case_open"])) with data.data.grounds.emergency.recipient_kinds as ["social_services", "health"]
	fx.denied(d, "recipient_kind_not_allowed")
}

# source_kinds null means any source kind; excluded_source_kinds still apply.
test_source_kinds_null_means_any if {
	g := fx.with_keys(police_duty, {"source_kinds": null, "excluded_source_kinds": ["health"]})
	grounds.source_kind_allowed({"source": {"kind": "preschool"}}, g)
	not grounds.source_kind_allowed({"source": {"kind": "health"}}, g)
	not grounds.source_kind_allowed({"source": {}}, g)
}
