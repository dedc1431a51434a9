package samsyn.config_test

import data.samsyn.config
import data.samsyn.fixtures_test as fx

# ---------------------------------------------------------------------------------------------
# shape

contract_grounds := {
	"consent", "mandatory_report", "crime_prevention_u21",
	"social_services_inquiry", "care_support_u18", "emergency",
}

ground_keys := [
	"statute", "purposes", "source_kinds", "excluded_source_kinds", "recipient_kinds",
	"kind_pairs", "age_below", "requires_consent", "requires_relationship",
	"recipient_in_report_municipality", "recipient_roles_any", "excluded_categories",
	"proportionality", "obligations",
]

# The shipped data has the shape the rules read.
test_shipped_data_well_formed if {
	config.well_formed
}

# Every contract ground has a record, and every record is well formed.
test_shipped_grounds_well_formed if {
	every name in contract_grounds {
		config.ground(name)
	}
	every name, g in config.grounds {
		is_string(name)
		config.well_formed_ground(g)
	}
}

# Every ground record carries a statute reference.
test_every_ground_names_its_statute if {
	every g in config.grounds {
		count(trim_space(g.statute)) > 0
	}
}

# A record that lacks any one field is malformed, whichever ground and field.
test_missing_ground_field_is_malformed if {
	every name in contract_grounds {
		every key in ground_keys {
			not config.well_formed_ground(object.remove(config.ground(name), [key]))
		}
	}
}

# Wrong types are malformed.
test_mistyped_ground_fields_are_malformed if {
	g := config.ground("crime_prevention_u21")
	not config.well_formed_ground(fx.with_keys(g, {"age_below": "21"}))
	not config.well_formed_ground(fx.with_keys(g, {"purposes": "crime_prevention"}))
	not config.well_formed_ground(fx.with_keys(g, {"recipient_kinds": null}))
	not config.well_formed_ground(fx.with_keys(g, {"requires_consent": "false"}))
	not config.well_formed_ground(fx.with_keys(g, {"kind_pairs": [["school", "police", "health"]]}))
	not config.well_formed_ground(fx.with_keys(g, {"kind_pairs": "school-police"}))
}

# A ground must tie the recipient to the child: by a relationship or the report municipality.
test_ground_must_tie_recipient_to_child if {
	g := config.ground("mandatory_report")
	not config.well_formed_ground(fx.with_keys(g, {"recipient_in_report_municipality": false}))
	config.well_formed_ground(fx.with_keys(g, {"requires_relationship": true}))
}

# Broken policy data is noticed.
test_malformed_data_is_noticed if {
	not config.well_formed with data.data.matrix.school.early_support as "attendance"
	not config.well_formed with data.data.matrix as []
	not config.well_formed with data.data.vocabulary.categories as null
	not config.well_formed with data.data.vocabulary.kinds as "school"
	not config.well_formed with data.data.proportionality.close_circle_roles as "barnkontakt"
	not config.well_formed with data.data.proportionality.exceptions as [{"recipient_kind": "social_services"}]
	not config.well_formed with data.data.consent.age_rules as []
	not config.well_formed with data.data.consent.age_rules as [{"from_age": 0, "below_age": null, "required_given_by": []}]
	not config.well_formed with data.data.banding.fields as null
}

# Bands must cover every figure once: from 0, without gap or overlap, open at the top.
test_bands_must_cover_every_figure_once if {
	not config.well_formed with data.data.banding.bands as []
	not config.well_formed with data.data.banding.bands as [
		{"label": "<10", "min": 0, "max": 10},
		{"label": ">=20", "min": 20, "max": null},
	]
	not config.well_formed with data.data.banding.bands as [
		{"label": "<10", "min": 0, "max": 10},
		{"label": "10-100", "min": 10, "max": 100},
	]
	not config.well_formed with data.data.banding.bands as [{"label": ">=5", "min": 5, "max": null}]
	config.well_formed with data.data.banding.bands as [{"label": "any", "min": 0, "max": null}]
}

# ---------------------------------------------------------------------------------------------
# ceiling: data may tighten the contract's rules, never widen them. These tests keep passing
# when a municipality tightens a rule and fail when an edit widens one.

_set(xs) := {x | some x in xs}

_expanded(cell) := {cat | some cat in fx.all_categories} if "*" in cell

_expanded(cell) := _set(cell) if not "*" in cell

# No matrix cell holds more than the contract's, and there is no row beyond the contract's.
test_ceiling_matrix if {
	every kind, row in config.matrix {
		every purpose, cell in row {
			_expanded(cell) - fx.contract_matrix[kind][purpose] == set()
		}
	}
}

# Nothing is ever addressed to oversight.
test_ceiling_no_ground_names_oversight if {
	every g in config.grounds {
		not "oversight" in g.recipient_kinds
	}
}

test_ceiling_consent if {
	g := config.ground("consent")
	g.requires_consent == true
	g.requires_relationship == true
	g.proportionality == true
}

test_ceiling_mandatory_report if {
	g := config.ground("mandatory_report")
	_set(g.recipient_kinds) - {"social_services"} == set()
	g.recipient_in_report_municipality == true
}

test_ceiling_crime_prevention_u21 if {
	g := config.ground("crime_prevention_u21")
	_set(g.purposes) - {"crime_prevention"} == set()
	sspf := {"school", "social_services", "police"}
	_set(g.source_kinds) - sspf == set()
	_set(g.recipient_kinds) - sspf == set()
	{"student_health", "health"} - _set(g.excluded_source_kinds) == set()
	{"health", "health_detail", "social_detail"} - _set(g.excluded_categories) == set()
	g.age_below <= 21
	g.requires_relationship == true
	g.proportionality == true
}

test_ceiling_social_services_inquiry if {
	g := config.ground("social_services_inquiry")
	_set(g.recipient_kinds) - {"social_services"} == set()
	count(g.recipient_roles_any) > 0
	_set(g.recipient_roles_any) - {"case_open"} == set()
	g.requires_relationship == true
}

test_ceiling_care_support_u18 if {
	g := config.ground("care_support_u18")
	_set(g.purposes) - {"early_support", "child_plan"} == set()
	_set(g.source_kinds) - {"health", "social_services"} == set()
	_set(g.recipient_kinds) - {"health", "social_services"} == set()
	_set(g.kind_pairs) - {["health", "social_services"], ["social_services", "health"]} == set()
	g.age_below <= 18
	g.requires_relationship == true
	g.proportionality == true
}

test_ceiling_emergency if {
	g := config.ground("emergency")
	_set(g.recipient_kinds) - {"social_services", "police", "health"} == set()
	{"notify_source", "review"} - _set(g.obligations) == set()
	g.requires_relationship == true
}

# At every age, the consent rules ask for at least the contract's giver: a guardian under 15,
# the child from 15.
test_ceiling_consent_age_rules if {
	every age in numbers.range(0, 30) {
		required := {role |
			some rule in config.consent_age_rules
			age >= rule.from_age
			_below_or_open(age, rule.below_age)
			some role in rule.required_given_by
		}
		_contract_giver(age) in required
	}
}

_contract_giver(age) := "guardian" if age < 15

_contract_giver(age) := "child" if age >= 15

_below_or_open(_, null)

_below_or_open(age, limit) if age < limit

# The close circle is no wider than the contract's, nor are its exceptions.
test_ceiling_proportionality if {
	circle := {"barnteam_member", "stodsamordnare", "sip_participant", "barnkontakt"}
	config.close_circle_roles - circle == set()
	every ex in config.detail_exceptions {
		ex == {"recipient_kind": "social_services", "role": "case_open"}
	}
}

# The attendance figures are banded for every recipient the contract says.
test_ceiling_banding if {
	{"absence_percent", "unexcused_percent"} - _set(config.banding.fields) == set()
	_set(config.banding.exempt_recipient_kinds) - {"preschool", "school", "student_health"} == set()
}
