package samsyn.admission_test

import data.samsyn.admission

# A school's orosanmälan about a 7-year-old, its municipality's social services registered.
report := {
	"type": "mandatory.report",
	"source": {"org": "skola", "kind": "school", "municipality": "1460"},
	"purpose": "mandatory_report",
	"legal_basis": "mandatory_report",
	"municipality_extension": null,
	"age": 7,
	"social_services_municipalities": ["1460"],
}

refusals(overrides) := v.reasons if {
	v := admission.verdict with input as {"event": object.union(report, overrides)}
	_consistent(v)
	not v.fault
}

_consistent(v) if {
	v.admit
	v.reasons == []
}

_consistent(v) if {
	not v.admit
	count(v.reasons) > 0
}

fault(ev) := v.reasons if {
	v := admission.verdict with input as ev
	v.fault
	not v.admit
}

test_report_admitted if {
	refusals({}) == []
}

# Event type x ground: what can never be routed is refused at ingest.
test_report_type_refused_under_consent if {
	refusals({"legal_basis": "consent", "purpose": "early_support"}) == ["type_not_allowed_for_ground"]
}

test_report_type_refused_under_crime_prevention if {
	r := refusals({"legal_basis": "crime_prevention_u21", "purpose": "crime_prevention"})
	r == ["type_not_allowed_for_ground"]
}

test_other_type_refused_under_mandatory_report if {
	refusals({"type": "health.contact"}) == ["type_not_allowed_for_ground"]
}

test_type_allowed_under_consent_admitted if {
	refusals({"type": "attendance.flagged", "legal_basis": "consent", "purpose": "early_support"}) == []
}

# The purpose and the source kind are the ground's too.
test_purpose_and_source_refused if {
	refusals({"purpose": "early_support"}) == ["purpose_not_allowed_for_ground"]
	r := refusals({"type": "health.contact", "legal_basis": "crime_prevention_u21", "purpose": "crime_prevention", "source": {"org": "vc", "kind": "health", "municipality": null}})
	r == ["source_kind_not_allowed", "type_not_allowed_for_ground"]
}

# Age limits: a report and an inquiry concern children; crime prevention is under 21.
test_adult_refused if {
	refusals({"age": 19}) == ["age_limit_exceeded"]
	refusals({"age": 18}) == ["age_limit_exceeded"]
	inquiry := {"type": "health.contact", "legal_basis": "social_services_inquiry", "purpose": "social_services_inquiry"}
	refusals(object.union(inquiry, {"age": 19})) == ["age_limit_exceeded"]
	refusals(object.union(inquiry, {"age": 17})) == []
	crime := {"type": "police.observation", "legal_basis": "crime_prevention_u21", "purpose": "crime_prevention"}
	refusals(object.union(crime, {"age": 20})) == []
	refusals(object.union(crime, {"age": 21})) == ["age_limit_exceeded"]
}

# The report goes to the source's own municipality: a school cannot redirect it.
test_extension_refused_for_source_with_municipality if {
	refusals({"municipality_extension": "1492", "social_services_municipalities": ["1460", "1492"]}) == ["municipality_not_for_this_source"]
	refusals({"municipality_extension": "1460"}) == []
}

# A source without a municipality names one; a report that can reach no one is refused.
test_report_unreachable_refused if {
	police := {"org": "polis", "kind": "police", "municipality": null}
	refusals({"source": police, "municipality_extension": "1460"}) == []
	refusals({"source": police}) == ["report_unreachable"]
	refusals({"source": police, "municipality_extension": "9999", "social_services_municipalities": []}) == ["report_unreachable"]
	refusals({"social_services_municipalities": []}) == ["report_unreachable"]
}

# Other grounds do not need a report municipality.
test_no_report_municipality_needed_elsewhere if {
	e := {"type": "attendance.flagged", "legal_basis": "consent", "purpose": "early_support", "social_services_municipalities": []}
	refusals(e) == []
}

# Faults: the question could not be answered (the ingest accepts, the router holds).
test_unknown_ground_refused if {
	refusals({"legal_basis": "legitimate_interest"}) == ["unknown_ground"]
}

test_malformed_input_is_a_fault if {
	fault({"event": object.union(report, {"source": {"org": "skola", "kind": "kindergarten", "municipality": null}})}) == ["malformed_input"]
	fault({"event": object.union(report, {"social_services_municipalities": null})}) == ["malformed_input"]
}

test_no_event_is_indeterminate if {
	fault({}) == ["indeterminate"]
}

test_broken_data_is_a_fault if {
	fault({"event": report}) == ["config_malformed"] with data.data.matrix as "broken"
}

test_broken_ground_is_a_fault if {
	fault({"event": report}) == ["ground_malformed"] with data.data.grounds.mandatory_report.statute as null
}

test_widened_data_is_a_fault if {
	fault({"event": report}) == ["config_exceeds_ceiling"] with data.data.grounds.mandatory_report.age_below as 21
}

# A batch is asked once: each event gets what it would get alone, in order, a malformed one
# (a fault) among them too.
test_verdicts_of_a_batch_are_each_events_verdict if {
	adult := object.union(report, {"age": 19})
	broken := object.union(report, {"social_services_municipalities": null})
	events := [report, adult, broken, report]
	vs := admission.verdicts with input as {"events": events}
	count(vs) == 4
	every i, e in events {
		vs[i] == admission.verdict with input as {"event": e}
	}
	vs[1].reasons == ["age_limit_exceeded"]
	vs[2].fault
}

test_verdicts_of_no_events_are_none if {
	admission.verdicts == [] with input as {"events": []}
}
