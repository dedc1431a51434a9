# METADATA
# title: The ceiling of the sharing rules
# description: |
#   The widest rules the law and the contract (CONTRACT.md section 6) allow, as policy code
#   rather than data: a deployment's data (policies/data) may tighten the rules but never widen
#   them past this. Data that widens a ground, a matrix cell, an age bound, the roles, the close
#   circle, the banding or the consent rules is a policy fault when it is loaded: every decision
#   is denied with config_exceeds_ceiling (fail closed), the ingest and the router hold, and
#   /readyz reports policy_data down. A new ground needs its ceiling here (a reviewed code
#   change), not only a data file.
package samsyn.ceiling

import data.samsyn.config

_agency := {"preschool", "school", "student_health", "social_services", "health", "police"}

_all_but_report := {
	"concern.raised", "wellbeing.assessed", "attendance.flagged", "support.decided",
	"health.contact", "social.case", "police.observation", "plan.updated", "barnteam.convened",
}

# METADATA
# title: The ground records at their widest
# description: |
#   Same fields as a ground record. Sets are maxima (data may name fewer) except the
#   exclusions and obligations, which are minima; true flags for consent, relationship, report
#   municipality and proportionality, and false flags for stated_reason_suffices and
#   explicit_provision, may not be turned.
grounds := {
	"consent": {
		"explicit_provision": true, "event_types": _all_but_report, "purposes": null,
		"source_kinds": _agency, "excluded_source_kinds": set(), "recipient_kinds": _agency,
		"kind_pairs": null, "age_below": null, "requires_consent": true,
		"requires_relationship": true, "recipient_in_report_municipality": false,
		"stated_reason_suffices": false, "recipient_roles_any": null,
		"excluded_categories": set(), "proportionality": true, "obligations": set(),
	},
	"mandatory_report": {
		"explicit_provision": true, "event_types": {"mandatory.report"},
		"purposes": {"mandatory_report"}, "source_kinds": _agency,
		"excluded_source_kinds": set(), "recipient_kinds": {"social_services"},
		"kind_pairs": null, "age_below": 18, "requires_consent": false,
		"requires_relationship": false, "recipient_in_report_municipality": true,
		"stated_reason_suffices": false, "recipient_roles_any": null,
		"excluded_categories": set(), "proportionality": false, "obligations": set(),
	},
	"crime_prevention_u21": {
		"explicit_provision": true,
		"event_types": {"concern.raised", "attendance.flagged", "social.case", "police.observation"},
		"purposes": {"crime_prevention"}, "source_kinds": {"school", "social_services", "police"},
		"excluded_source_kinds": {"student_health", "health"},
		"recipient_kinds": {"school", "social_services", "police"}, "kind_pairs": null,
		"age_below": 21, "requires_consent": false, "requires_relationship": true,
		"recipient_in_report_municipality": false, "stated_reason_suffices": false,
		"recipient_roles_any": null,
		"excluded_categories": {"health", "health_detail", "social_detail"},
		"proportionality": true, "obligations": set(),
	},
	"social_services_inquiry": {
		"explicit_provision": true, "event_types": _all_but_report,
		"purposes": {"social_services_inquiry"}, "source_kinds": _agency,
		"excluded_source_kinds": set(), "recipient_kinds": {"social_services"},
		"kind_pairs": null, "age_below": 18, "requires_consent": false,
		"requires_relationship": true, "recipient_in_report_municipality": false,
		"stated_reason_suffices": false, "recipient_roles_any": {"case_open"},
		"excluded_categories": set(), "proportionality": false, "obligations": set(),
	},
	"care_support_u18": {
		"explicit_provision": true,
		"event_types": {
			"concern.raised", "wellbeing.assessed", "health.contact", "social.case",
			"plan.updated", "barnteam.convened",
		},
		"purposes": {"early_support", "child_plan"}, "source_kinds": {"health", "social_services"},
		"excluded_source_kinds": set(), "recipient_kinds": {"health", "social_services"},
		"kind_pairs": {["health", "social_services"], ["social_services", "health"]},
		"age_below": 18, "requires_consent": false, "requires_relationship": true,
		"recipient_in_report_municipality": false, "stated_reason_suffices": false,
		"recipient_roles_any": null, "excluded_categories": set(), "proportionality": true,
		"obligations": set(),
	},
	"emergency": {
		"explicit_provision": false, "event_types": (_all_but_report | {"mandatory.report"}),
		"purposes": {"emergency"}, "source_kinds": _agency, "excluded_source_kinds": set(),
		"recipient_kinds": {"social_services", "police", "health"}, "kind_pairs": null,
		"age_below": null, "requires_consent": false, "requires_relationship": true,
		"recipient_in_report_municipality": false, "stated_reason_suffices": true,
		"recipient_roles_any": null, "excluded_categories": set(), "proportionality": false,
		"obligations": {"notify_source", "review"},
	},
}

_categories := {
	"attendance", "education_support", "wellbeing", "concern", "concern_detail",
	"health", "health_detail", "social", "social_detail", "police", "police_detail", "plan",
}

_school_support := {"attendance", "education_support", "wellbeing", "concern", "concern_detail", "plan"}

_health_support := {"attendance", "wellbeing", "concern", "concern_detail", "health", "health_detail", "plan"}

_school_crime := {"attendance", "concern", "police"}

# METADATA
# title: The necessity matrix at its widest (the contract's table)
matrix := {
	"preschool": _row(_school_support, _school_crime, set(), set()),
	"school": _row(_school_support, _school_crime, set(), set()),
	"student_health": _row(_school_support | {"health"}, set(), set(), set()),
	"social_services": _row(
		_categories - {"health_detail", "police_detail"},
		{"attendance", "concern", "social", "police"},
		_categories, _categories,
	),
	"health": _row(_health_support, set(), set(), _categories),
	"police": _row(
		{"concern", "plan"},
		{"attendance", "concern", "social", "police", "police_detail"},
		set(), _categories,
	),
}

_row(support, crime, report, emergency) := {
	"early_support": support,
	"child_plan": support,
	"crime_prevention": crime,
	"mandatory_report": report,
	"social_services_inquiry": report,
	"emergency": emergency,
}

_circle := {"barnkontakt", "barnteam_member", "stodsamordnare", "sip_participant"}

# METADATA
# title: The roles that may count for each kind, at most
roles := {
	"preschool": ({"enrolled"} | _circle),
	"school": ({"enrolled"} | _circle),
	"student_health": ({"enrolled"} | _circle),
	"social_services": ({"case_open"} | _circle),
	"health": ({"listed"} | _circle),
	"police": {"case_open", "barnteam_member"},
	"oversight": set(),
}

# METADATA
# scope: document
# title: What the policy data widens past the ceiling
# description: |
#   One name per widening ("grounds.<name>.<field>", "matrix.<kind>.<purpose>", ...); empty
#   for the shipped data and for any tightening of it.
violations contains sprintf("grounds.%s", [name]) if {
	some name, _ in config.grounds
	not grounds[name]
}

violations contains sprintf("grounds.%s.%s", [name, field]) if {
	some name, g in config.grounds
	c := grounds[name]
	some field, rule in _field_rules
	not _respects(rule, object.get(g, field, null), c[field])
}

violations contains "vocabulary.categories" if {
	count((config.known_categories - _categories) - {"identity"}) > 0
}

violations contains sprintf("vocabulary.roles.%s", [kind]) if {
	some kind, listed in config.roles_by_kind
	not _subset(listed, object.get(roles, kind, set()))
}

violations contains sprintf("matrix.%s.%s", [kind, purpose]) if {
	some kind, row in config.matrix
	some purpose, cell in row
	not _subset(_expanded(cell), object.get(object.get(matrix, kind, {}), purpose, set()))
}

violations contains "proportionality.close_circle_roles" if {
	not _subset(config.close_circle_roles, _circle)
}

violations contains "proportionality.exceptions" if {
	some ex in config.detail_exceptions
	ex != {"recipient_kind": "social_services", "role": "case_open"}
}

violations contains "banding.fields" if {
	not _subset({"absence_percent", "unexcused_percent"}, config.banding.fields)
}

violations contains "banding.exempt_recipient_kinds" if {
	not _subset(config.banding.exempt_recipient_kinds, {"preschool", "school", "student_health"})
}

# At every age a rule covers, the consent rules ask for at least the contract's giver: a
# guardian under 15, the child from 15. (An age no rule covers fails every consent: tighter.)
# What is required changes only where a rule or the contract starts or ends, so the ages where
# one does are the ages to check (not every age: this runs with every query).
violations contains sprintf("consent.age_rules.%d", [age]) if {
	some age in _age_boundaries
	required := _required_at(age)
	count(required) > 0
	not _contract_giver(age) in required
}

_age_boundaries := {0, 15} | {age |
	some rule in config.consent_age_rules
	some age in [rule.from_age, rule.below_age]
	is_number(age)
}

_required_at(age) := {role |
	some rule in config.consent_age_rules
	age >= rule.from_age
	_below_or_open(age, rule.below_age)
	some role in rule.required_given_by
}

_contract_giver(age) := "guardian" if age < 15

_contract_giver(age) := "child" if age >= 15

_below_or_open(_, null) := true

_below_or_open(age, limit) if age < limit

# How each ground field may move: "at_most" (a subset of the ceiling's; null only where the
# ceiling is null), "at_least" (a superset), "keep_true", "keep_false", "age" (at most the
# ceiling's bound; null only where the ceiling has none).
_field_rules := {
	"event_types": "at_most", "purposes": "at_most", "source_kinds": "at_most",
	"recipient_kinds": "at_most", "kind_pairs": "at_most", "recipient_roles_any": "at_most",
	"excluded_source_kinds": "at_least", "excluded_categories": "at_least",
	"obligations": "at_least", "requires_consent": "keep_true",
	"requires_relationship": "keep_true", "recipient_in_report_municipality": "keep_true",
	"proportionality": "keep_true", "stated_reason_suffices": "keep_false",
	"explicit_provision": "keep_false", "age_below": "age",
}

_respects("at_most", _, null) := true

_respects("at_most", value, ceiling) if {
	ceiling != null
	_subset(value, ceiling)
}

_respects("at_least", value, ceiling) if _subset(ceiling, value)

_respects("keep_true", _, false) := true

_respects("keep_true", true, true) := true

_respects("keep_false", _, true) := true

_respects("keep_false", false, false) := true

_respects("age", _, null) := true

_respects("age", value, ceiling) if {
	is_number(ceiling)
	is_number(value)
	value <= ceiling
}

_subset(xs, ys) if {
	is_array(xs)
	every x in xs {
		x in ys
	}
}

_subset(xs, ys) if {
	is_set(xs)
	every x in xs {
		x in ys
	}
}

_expanded(cell) := _categories if "*" in cell

_expanded(cell) := {cat | some cat in cell} if not "*" in cell

# METADATA
# title: The policy data's own failures, as every decision and admission reads them
# description: |
#   {} when the data is well formed and within the ceiling, else {"config_malformed"} or
#   {"config_exceeds_ceiling"}: checked_data_failures. Checking costs OPA about 3 ms per query
#   (half of a one-event query) and the data changes only with the bundle, so the bundle build
#   records the outcome in data.policy_data_check: the SHA-256 of data.data as json.marshal
#   writes it and checked_data_failures on that data (deploy/local/lib.sh
#   record_policy_data_check). Where the record is for this very data (hash equal, failures
#   known codes), its failures are read (0.2 ms); otherwise (no record, a record of other data,
#   a malformed record) the data is checked at each query, as it always was.
data_failures := {f | some f in data.policy_data_check.failures} if {
	data_check_recorded
} else := checked_data_failures

# METADATA
# scope: document
# title: The policy data checked
# description: Always defined; the one place that turns the checks into reason codes.
default checked_data_failures := set()

checked_data_failures := {"config_malformed"} if {
	not config.well_formed
} else := {"config_exceeds_ceiling"} if {
	count(violations) > 0
}

# METADATA
# scope: document
# title: The bundle carries the outcome of checking this very data
# description: |
#   data.policy_data_check names data.data's SHA-256 and lists failures that are reason codes
#   of checked_data_failures. False where the bundle was built without the record, or data.data
#   was changed after it.
default data_check_recorded := false

data_check_recorded if {
	record := data.policy_data_check
	record.sha256 == crypto.sha256(json.marshal(data.data))
	is_array(record.failures)
	every f in record.failures {
		f in {"config_malformed", "config_exceeds_ceiling"}
	}
}

# METADATA
# title: What is wrong with the policy data, for /readyz
# description: |
#   Empty when the data is well formed and within the ceiling; else ["config_malformed"] or
#   the names of the widenings.
data_faults := ["config_malformed"] if {
	not config.well_formed
} else := sort(violations)
