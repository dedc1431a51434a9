package samsyn.config_test

import data.samsyn.ceiling
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
	"proportionality", "obligations", "explicit_provision", "event_types", "stated_reason_suffices",
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
# ceiling (samsyn.ceiling): data may tighten the contract's rules, never widen them; a widening
# is a fault when the data is loaded, named in data_faults (for /readyz).

test_shipped_data_within_ceiling if {
	ceiling.violations == set()
	ceiling.data_faults == []
}

# Each widening is named.
test_widenings_are_named if {
	ceiling.violations == {"matrix.police.early_support"} with data.data.matrix.police.early_support as ["concern", "plan", "health"]
	ceiling.violations == {"matrix.police.mandatory_report"} with data.data.matrix.police.mandatory_report as ["*"]
	ceiling.violations == {"grounds.mandatory_report.recipient_kinds"} with data.data.grounds.mandatory_report.recipient_kinds as ["social_services", "police"]
	ceiling.violations == {"grounds.mandatory_report.age_below"} with data.data.grounds.mandatory_report.age_below as 19
	ceiling.violations == {"grounds.social_services_inquiry.age_below"} with data.data.grounds.social_services_inquiry.age_below as null
	ceiling.violations == {"grounds.consent.event_types"} with data.data.grounds.consent.event_types as ["mandatory.report"]
	ceiling.violations == {"grounds.consent.requires_relationship"} with data.data.grounds.consent.requires_relationship as false
	ceiling.violations == {"grounds.consent.stated_reason_suffices"} with data.data.grounds.consent.stated_reason_suffices as true
	ceiling.violations == {"grounds.emergency.explicit_provision"} with data.data.grounds.emergency.explicit_provision as true
	ceiling.violations == {"grounds.emergency.obligations"} with data.data.grounds.emergency.obligations as ["notify_source"]
	ceiling.violations == {"grounds.crime_prevention_u21.excluded_categories"} with data.data.grounds.crime_prevention_u21.excluded_categories as ["health"]
	ceiling.violations == {"grounds.social_services_inquiry.recipient_roles_any"} with data.data.grounds.social_services_inquiry.recipient_roles_any as null
	ceiling.violations == {"grounds.care_support_u18.kind_pairs"} with data.data.grounds.care_support_u18.kind_pairs as null
	ceiling.violations == {"grounds.mandatory_report.recipient_in_report_municipality"} with data.data.grounds.mandatory_report.recipient_in_report_municipality as false
}

test_other_widenings_are_named if {
	ceiling.violations == {"grounds.everything"} with data.data.grounds.everything as data.data.grounds.consent
	ceiling.violations == {"vocabulary.roles.school"} with data.data.vocabulary.roles.school as ["enrolled", "listed"]
	ceiling.violations == {"vocabulary.categories"} with data.data.vocabulary.categories as array.concat(data.data.vocabulary.categories, ["finances"])
	ceiling.violations == {"proportionality.close_circle_roles"} with data.data.proportionality.close_circle_roles as ["barnkontakt", "enrolled"]
	ceiling.violations == {"proportionality.exceptions"} with data.data.proportionality.exceptions as [{"recipient_kind": "police", "role": "case_open"}]
	ceiling.violations == {"banding.fields"} with data.data.banding.fields as ["absence_percent"]
	ceiling.violations == {"banding.exempt_recipient_kinds"} with data.data.banding.exempt_recipient_kinds as ["school", "health"]
	weak := [{"from_age": 0, "below_age": null, "required_given_by": ["guardian"]}]
	v := ceiling.violations with data.data.consent.age_rules as weak
	"consent.age_rules.15" in v
	not "consent.age_rules.14" in v
}

# Tightening is never a violation.
test_tightenings_are_within_ceiling if {
	ceiling.violations == set() with data.data.matrix.police.crime_prevention as ["concern"]
	ceiling.violations == set() with data.data.grounds.crime_prevention_u21.age_below as 18
	ceiling.violations == set() with data.data.grounds.mandatory_report.age_below as 16
	ceiling.violations == set() with data.data.grounds.emergency.recipient_kinds as ["social_services"]
	ceiling.violations == set() with data.data.grounds.emergency.stated_reason_suffices as false
	ceiling.violations == set() with data.data.grounds.consent.obligations as ["review"]
	ceiling.violations == set() with data.data.grounds.consent.purposes as ["early_support"]
	ceiling.violations == set() with data.data.grounds.consent.explicit_provision as false
	ceiling.violations == set() with data.data.grounds.care_support_u18.excluded_categories as ["health_detail"]
	ceiling.violations == set() with data.data.grounds.consent.recipient_in_report_municipality as true
	ceiling.violations == set() with data.data.vocabulary.roles.police as ["case_open"]
	ceiling.violations == set() with data.data.consent.age_rules as [{"from_age": 0, "below_age": 15, "required_given_by": ["guardian", "child"]}]
}

# Widened data is a fault for every decision and at ingest: nothing goes, the router holds.
test_widened_data_is_a_fault if {
	d := fx.decision(fx.event({}), "vc") with data.data.grounds.consent.requires_relationship as false
	fx.denied(d, "config_exceeds_ceiling")
	d.fault == true
	ceiling.data_faults == ["grounds.consent.requires_relationship"] with data.data.grounds.consent.requires_relationship as false
	ceiling.data_faults == ["config_malformed"] with data.data.matrix as []
}

# ---------------------------------------------------------------------------------------------
# the bundle's record of the check (data.policy_data_check, made by the bundle build): read
# instead of checking again only when it is of this very data.

_recorded(failures) := {"sha256": crypto.sha256(json.marshal(data.data)), "failures": failures}

test_record_of_this_data_is_read if {
	ceiling.data_check_recorded with data.policy_data_check as _recorded([])
	ceiling.data_failures == set() with data.policy_data_check as _recorded([])

	# A record that lists a fault is what decisions and admission then read.
	faulty := _recorded(["config_exceeds_ceiling"])
	ceiling.data_failures == {"config_exceeds_ceiling"} with data.policy_data_check as faulty
	d := fx.decision(fx.event({}), "vc") with data.policy_data_check as faulty
	fx.denied(d, "config_exceeds_ceiling")
	d.fault == true
}

# A record made before the data changed hides nothing: the changed data is checked.
test_record_of_other_data_is_not_read if {
	clean := _recorded([])
	not ceiling.data_check_recorded with data.policy_data_check as clean
		with data.data.grounds.consent.requires_relationship as false
	d := fx.decision(fx.event({}), "vc") with data.policy_data_check as clean
		with data.data.grounds.consent.requires_relationship as false
	fx.denied(d, "config_exceeds_ceiling")
	ceiling.data_failures == {"config_malformed"} with data.policy_data_check as clean
		with data.data.matrix as []
}

# Without a record, or with a malformed one, the data is checked at each query.
test_no_or_malformed_record_is_not_read if {
	not ceiling.data_check_recorded
	ceiling.data_failures == set()
	digest := crypto.sha256(json.marshal(data.data))
	not ceiling.data_check_recorded with data.policy_data_check as {"sha256": digest}
	not ceiling.data_check_recorded with data.policy_data_check as {"sha256": digest, "failures": "none"}
	not ceiling.data_check_recorded with data.policy_data_check as {"sha256": digest, "failures": ["fine"]}
	ceiling.data_failures == set() with data.policy_data_check as {"sha256": digest, "failures": ["fine"]}
}
