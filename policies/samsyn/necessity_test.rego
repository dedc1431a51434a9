package samsyn.necessity_test

import data.samsyn.fixtures_test as fx
import data.samsyn.necessity

# Every cell of the necessity matrix (CONTRACT.md section 6), checked against the contract's
# table as transcribed in fixtures_test.contract_matrix. Each decision is taken under a
# synthetic ground that cuts nothing, for a recipient in the child's barnteam, so that only the
# matrix decides. For a non-empty cell: an event carrying every category shares exactly the
# cell (allows), and an event carrying only categories outside the cell shares nothing
# (denies). An empty cell ("—") shares nothing even when the event carries every category.

open_ground := {
	"statute": "test: cuts nothing",
	"explicit_provision": true,
	"event_types": ["concern.raised"],
	"purposes": null,
	"source_kinds": null,
	"excluded_source_kinds": [],
	"recipient_kinds": ["preschool", "school", "student_health", "social_services", "health", "police", "oversight"],
	"kind_pairs": null,
	"age_below": null,
	"requires_consent": false,
	"requires_relationship": true,
	"recipient_in_report_municipality": false,
	"stated_reason_suffices": false,
	"recipient_roles_any": null,
	"excluded_categories": [],
	"proportionality": false,
	"obligations": [],
}

open_decision(kind, purpose, cats) := d if {
	e := fx.with_categories(fx.event({"purpose": purpose, "legal_basis": "open_test", "consent": null}), cats)
	d := fx.only(e, fx.candidate("rcp", kind, ["barnteam_member"])) with data.data.grounds.open_test as open_ground with data.samsyn.ceiling.grounds as fx.ceiling_with("open_test", open_ground)
}

cell_allows(kind, purpose) if {
	cell := fx.contract_matrix[kind][purpose]
	count(cell) > 0
	d := open_decision(kind, purpose, fx.all_categories)
	fx.allowed(d)
	d.categories == sort(cell | {"identity"})
	d.withheld == sort({cat | some cat in fx.all_categories} - cell)
}

cell_denies(kind, purpose) if {
	outside := {cat | some cat in fx.all_categories} - fx.contract_matrix[kind][purpose]
	d := open_decision(kind, purpose, _outside_or_unknown(outside))
	d.allow == false
	d.reasons == ["nothing_necessary"]
}

# A "*" cell has no known category outside it; an unknown category is outside every cell.
_outside_or_unknown(outside) := sort(outside) if count(outside) > 0

_outside_or_unknown(outside) := ["x_unknown"] if count(outside) == 0

empty_cell_denies(kind, purpose) if {
	count(fx.contract_matrix[kind][purpose]) == 0
	d := open_decision(kind, purpose, fx.all_categories)
	d.allow == false
	d.reasons == ["nothing_necessary"]
	d.withheld == sort(fx.all_categories)
}

test_preschool_early_support_allows if cell_allows("preschool", "early_support")

test_preschool_early_support_denies if cell_denies("preschool", "early_support")

test_preschool_child_plan_allows if cell_allows("preschool", "child_plan")

test_preschool_child_plan_denies if cell_denies("preschool", "child_plan")

test_preschool_crime_prevention_allows if cell_allows("preschool", "crime_prevention")

test_preschool_crime_prevention_denies if cell_denies("preschool", "crime_prevention")

test_preschool_mandatory_report_empty_denies if empty_cell_denies("preschool", "mandatory_report")

test_preschool_social_services_inquiry_empty_denies if empty_cell_denies("preschool", "social_services_inquiry")

test_preschool_emergency_empty_denies if empty_cell_denies("preschool", "emergency")

test_school_early_support_allows if cell_allows("school", "early_support")

test_school_early_support_denies if cell_denies("school", "early_support")

test_school_child_plan_allows if cell_allows("school", "child_plan")

test_school_child_plan_denies if cell_denies("school", "child_plan")

test_school_crime_prevention_allows if cell_allows("school", "crime_prevention")

test_school_crime_prevention_denies if cell_denies("school", "crime_prevention")

test_school_mandatory_report_empty_denies if empty_cell_denies("school", "mandatory_report")

test_school_social_services_inquiry_empty_denies if empty_cell_denies("school", "social_services_inquiry")

test_school_emergency_empty_denies if empty_cell_denies("school", "emergency")

test_student_health_early_support_allows if cell_allows("student_health", "early_support")

test_student_health_early_support_denies if cell_denies("student_health", "early_support")

test_student_health_child_plan_allows if cell_allows("student_health", "child_plan")

test_student_health_child_plan_denies if cell_denies("student_health", "child_plan")

test_student_health_crime_prevention_empty_denies if empty_cell_denies("student_health", "crime_prevention")

test_student_health_mandatory_report_empty_denies if empty_cell_denies("student_health", "mandatory_report")

test_student_health_social_services_inquiry_empty_denies if empty_cell_denies("student_health", "social_services_inquiry")

test_student_health_emergency_empty_denies if empty_cell_denies("student_health", "emergency")

test_social_services_early_support_allows if cell_allows("social_services", "early_support")

test_social_services_early_support_denies if cell_denies("social_services", "early_support")

test_social_services_child_plan_allows if cell_allows("social_services", "child_plan")

test_social_services_child_plan_denies if cell_denies("social_services", "child_plan")

test_social_services_crime_prevention_allows if cell_allows("social_services", "crime_prevention")

test_social_services_crime_prevention_denies if cell_denies("social_services", "crime_prevention")

test_social_services_mandatory_report_allows if cell_allows("social_services", "mandatory_report")

test_social_services_mandatory_report_denies if cell_denies("social_services", "mandatory_report")

test_social_services_social_services_inquiry_allows if cell_allows("social_services", "social_services_inquiry")

test_social_services_social_services_inquiry_denies if cell_denies("social_services", "social_services_inquiry")

test_social_services_emergency_allows if cell_allows("social_services", "emergency")

test_social_services_emergency_denies if cell_denies("social_services", "emergency")

test_health_early_support_allows if cell_allows("health", "early_support")

test_health_early_support_denies if cell_denies("health", "early_support")

test_health_child_plan_allows if cell_allows("health", "child_plan")

test_health_child_plan_denies if cell_denies("health", "child_plan")

test_health_crime_prevention_empty_denies if empty_cell_denies("health", "crime_prevention")

test_health_mandatory_report_empty_denies if empty_cell_denies("health", "mandatory_report")

test_health_social_services_inquiry_empty_denies if empty_cell_denies("health", "social_services_inquiry")

test_health_emergency_allows if cell_allows("health", "emergency")

test_health_emergency_denies if cell_denies("health", "emergency")

test_police_early_support_allows if cell_allows("police", "early_support")

test_police_early_support_denies if cell_denies("police", "early_support")

test_police_child_plan_allows if cell_allows("police", "child_plan")

test_police_child_plan_denies if cell_denies("police", "child_plan")

test_police_crime_prevention_allows if cell_allows("police", "crime_prevention")

test_police_crime_prevention_denies if cell_denies("police", "crime_prevention")

test_police_mandatory_report_empty_denies if empty_cell_denies("police", "mandatory_report")

test_police_social_services_inquiry_empty_denies if empty_cell_denies("police", "social_services_inquiry")

test_police_emergency_allows if cell_allows("police", "emergency")

test_police_emergency_denies if cell_denies("police", "emergency")

# Oversight is never a recipient: it has no row, and the decision says why.
test_oversight_gets_nothing if {
	every purpose in fx.purposes {
		d := open_decision("oversight", purpose, fx.all_categories)
		d.allow == false
		"oversight_never_recipient" in d.reasons
	}
}

# The shipped matrix has no oversight row.
test_matrix_has_no_oversight_row if {
	not data.data.matrix.oversight
}

# A kind or purpose without a cell makes nothing necessary.
test_unknown_cell_is_empty if {
	not necessity.necessary("kindergarten", "early_support", "concern")
	not necessity.necessary("school", "curiosity", "concern")
}

# "*" stands for known categories only.
test_star_excludes_unknown_categories if {
	necessity.necessary("social_services", "emergency", "police_detail")
	not necessity.necessary("social_services", "emergency", "x_unknown")
}
