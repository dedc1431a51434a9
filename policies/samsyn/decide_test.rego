package samsyn.decide_test

import data.samsyn.decide
import data.samsyn.fixtures_test as fx
import data.samsyn.grounds

decision_keys := {"allow", "legal_ground", "statute", "categories", "withheld", "transforms", "obligations", "review", "reasons", "fault"}

# ---------------------------------------------------------------------------------------------
# the answer's shape

# Every candidate of every event gets a decision, allowed or not, with every field.
test_every_candidate_of_every_event_decided if {
	candidates := [
		fx.candidate("vc", "health", ["listed", "barnteam_member"]),
		fx.candidate("polis", "police", ["case_open"]),
		fx.candidate("annan", "school", []),
	]
	e1 := fx.event({"ref": "0", "candidates": candidates, "consent": fx.consent({"scope": {"to_kinds": ["health"]}})})
	e2 := fx.event({"ref": "1", "legal_basis": "no_such_ground", "candidates": candidates})
	out := fx.decide_batch([e1, e2])
	object.keys(out) == {"0", "1"}
	every ref in ["0", "1"] {
		object.keys(out[ref]) == {"vc", "polis", "annan"}
		every d in out[ref] {
			object.keys(d) == decision_keys
		}
	}
	fx.allowed(out["0"].vc)
	fx.denied(out["0"].polis, "consent_recipient_out_of_scope")
	fx.denied(out["0"].annan, "no_relationship")
	every d in out["1"] {
		fx.denied(d, "unknown_ground")
	}
}

# The router's indexed answer is the decisions, each distinct Decision once in its table.
test_indexed_answer_is_the_decisions if {
	candidates := [
		fx.candidate("vc", "health", ["listed", "barnteam_member"]),
		fx.candidate("vc2", "health", ["listed"]),
		fx.candidate("polis", "police", ["case_open"]),
	]
	alike := [fx.event({"ref": ref, "candidates": candidates}) | some ref in ["0", "1", "2"]]
	events := array.concat(alike, [fx.event({"ref": "3", "legal_basis": "emergency", "candidates": candidates})])
	batch := {"now": fx.now, "events": events}
	answer := decide.indexed_decisions with input as batch
	plain := decide.decisions with input as batch
	fx.decide_batch(events) == plain
	count(answer.table) == count({d | some d in answer.table})
	count(answer.table) == count({d | some per_org in plain; some d in per_org})
	count(answer.table) < 12
}

# An empty batch has no decisions; an event with no candidates is answered with none.
test_empty_batches if {
	fx.decide_batch([]) == {}
	fx.decide_batch([fx.event({"candidates": []})]) == {"e1": {}}
}

# A denial carries no categories, transforms or obligations, and names what was withheld for
# the audit trail.
test_denial_shape if {
	d := fx.decision(fx.event({"legal_basis": "emergency", "consent": null}), "vc")
	d.allow == false
	d.categories == []
	d.transforms == []
	d.obligations == []
	d.withheld == ["concern"]
	d.legal_ground == "emergency"
	d.statute == data.data.grounds.emergency.statute
	count(d.reasons) > 0
}

# ---------------------------------------------------------------------------------------------
# who may never receive

# Oversight bodies are never recipients, whatever the ground.
test_oversight_never_recipient if {
	every ground in ["consent", "emergency", "social_services_inquiry"] {
		d := fx.only(fx.event({"legal_basis": ground}), fx.candidate("dso", "oversight", ["case_open", "barnteam_member"]))
		fx.denied(d, "oversight_never_recipient")
	}
}

# The source is not its own recipient.
test_recipient_is_source_denied if {
	d := fx.only(fx.event({}), fx.candidate("skola", "school", ["enrolled", "barnkontakt"]))
	fx.denied(d, "recipient_is_source")
}

# ---------------------------------------------------------------------------------------------
# a batch the policy cannot answer pair by pair

# Two events with one ref: every pair of the batch is denied, rather than an evaluation error.
test_duplicate_event_ref_denies_batch if {
	e1 := fx.event({})
	e2 := fx.event({"categories": ["wellbeing"], "fields": {"ratings": "wellbeing"}})
	out := fx.decide_batch([e1, e2, fx.event({"ref": "e3"})])
	out.e1.vc.reasons == ["duplicate_event_ref"]
	out.e3.vc.reasons == ["duplicate_event_ref"]
	out.e1.vc.allow == false
}

# One organisation twice among an event's candidates: that event is denied, others are not.
test_duplicate_candidate_denies_event if {
	e1 := fx.event({"candidates": [
		fx.candidate("vc", "health", ["listed"]),
		fx.candidate("vc", "health", ["barnteam_member"]),
	]})
	out := fx.decide_batch([e1, fx.event({"ref": "e2"})])
	out.e1.vc.reasons == ["duplicate_candidate"]
	fx.allowed(out.e2.vc)
}

# ---------------------------------------------------------------------------------------------
# fail closed on missing or malformed input

base := fx.event({})

# The allowed fixture is the control for the tests below.
test_base_is_allowed if {
	fx.allowed(fx.decision(base, "vc"))
}

# Without any one attribute the rules read, the same event is denied.
test_missing_event_attribute_denies if {
	every key in ["source", "purpose", "legal_basis", "categories", "fields", "consent", "age"] {
		d := fx.decision(object.remove(base, [key]), "vc")
		d.allow == false
		count(d.reasons) > 0
	}
}

# The same for the source's attributes.
test_missing_source_attribute_denies if {
	every key in ["org", "kind"] {
		e := fx.with_keys(base, {"source": object.remove(base.source, [key])})
		fx.denied(fx.decision(e, "vc"), "malformed_input")
	}
}

# The same for the candidate's attributes (without org there is no key to answer under,
# which the router reads as a denial).
test_missing_candidate_attribute_denies if {
	every key in ["kind", "roles"] {
		c := object.remove(fx.candidate("vc", "health", ["listed", "barnteam_member"]), [key])
		fx.denied(fx.only(base, c), "malformed_input")
	}
	fx.denied(fx.only(base, fx.candidate("vc", "kindergarten", ["enrolled"])), "malformed_input")
	out := fx.decide_batch([fx.with_keys(base, {"candidates": [{"kind": "health", "roles": ["listed"]}]})])
	out.e1 == {}
}

# The same for the consent's attributes.
test_missing_consent_attribute_denies if {
	every key in ["subject_matches", "withdrawn", "valid_from", "valid_until", "given_by", "scope"] {
		e := fx.with_keys(base, {"consent": object.remove(base.consent, [key])})
		d := fx.decision(e, "vc")
		d.allow == false
		count(d.reasons) > 0
	}
}

# The same for the consent scope's attributes.
test_missing_scope_attribute_denies if {
	every key in ["from_kinds", "to_kinds", "categories", "purposes"] {
		scope := object.remove(base.consent.scope, [key])
		e := fx.with_keys(base, {"consent": fx.with_keys(base.consent, {"scope": scope})})
		d := fx.decision(e, "vc")
		d.allow == false
		count(d.reasons) > 0
	}
}

# Wrong types are malformed input, reported alone.
test_mistyped_input_denies if {
	every e in [
		fx.with_keys(base, {"ref": 1}),
		fx.with_keys(base, {"purpose": ["early_support"]}),
		fx.with_keys(base, {"categories": "concern"}),
		fx.with_keys(base, {"categories": ["concern", 3]}),
		fx.with_keys(base, {"fields": ["areas"]}),
		fx.with_keys(base, {"age": "10"}),
		fx.with_keys(base, {"age": -1}),
		fx.with_keys(base, {"source": {"org": "skola", "kind": null, "municipality": "1492"}}),
		fx.with_keys(base, {"source": {"org": "skola", "kind": "kindergarten", "municipality": "1492"}}),
		fx.with_keys(base, {"purpose": "curiosity"}),
	] {
		d := decide.decisions[e.ref].vc with input as {"now": fx.now, "events": [e]}
		d.reasons == ["malformed_input"]
	}
}

# fields and categories must describe the same data: a banded field the policy is not told
# about could leave unbanded.
test_fields_and_categories_disagree_denies if {
	e := fx.with_keys(base, {"categories": ["concern", "attendance"]})
	fx.denied(fx.decision(e, "vc"), "malformed_input")
}

# Without a readable now, nothing goes.
test_missing_or_unreadable_now_denies if {
	every batch in [{"events": [base]}, {"now": "today", "events": [base]}] {
		d := decide.decisions.e1.vc with input as batch
		d.reasons == ["malformed_input"]
	}
}

# Without readable policy data, nothing goes.
test_missing_policy_data_denies if {
	d := fx.decision(base, "vc") with data.data.matrix as null
	d.reasons == ["config_malformed"]
	d2 := fx.decision(base, "vc") with data.data as {}
	d2.allow == false
}

# ---------------------------------------------------------------------------------------------
# what the per-candidate rules see of the event

# The checks of a candidate and of the ground read a reduced copy of the event (so that OPA's
# cache of function results can serve events that agree on it): what they read is there as in
# the event, and what is missing or mistyped in the event stays so.
test_facts_keep_what_the_rules_read if {
	e := fx.event({"municipality_extension": "1492"})
	facts := decide.candidate_facts(e)
	object.keys(facts) == {"legal_basis", "purpose", "source", "municipality_extension", "consent"}
	facts.source == e.source
	facts.municipality_extension == "1492"
	facts.consent == {"scope": {"to_kinds": e.consent.scope.to_kinds, "to_orgs": []}}
	decide.candidate_facts(fx.with_keys(e, {"consent": null})).consent == null
	decide.candidate_facts(fx.with_keys(e, {"consent": "c-1"})).consent == "c-1"
	decide.candidate_facts(fx.with_keys(e, {"consent": {"withdrawn": true}})).consent == {}
	decide.candidate_facts(fx.with_keys(e, {"consent": {"scope": "all"}})).consent == {"scope": "all"}
	not "consent" in object.keys(decide.candidate_facts(object.remove(e, ["consent"])))
	object.keys(decide.ground_facts(e)) == {"type", "legal_basis", "purpose", "source", "age", "consent"}
	decide.ground_facts(e).consent == e.consent
	not "age" in object.keys(decide.ground_facts(object.remove(e, ["age"])))
	object.keys(grounds.admission_facts(e)) == {"type", "legal_basis", "purpose", "source", "age"}
	shape := {"type", "source", "purpose", "legal_basis", "municipality_extension", "categories", "fields"}
	object.keys(decide.event_shape(e)) == shape
}

# Events of one shape (one source, type and data) are still checked apart where they differ
# in what the shape leaves out: the ref, the child's age, the consent.
test_events_of_one_shape_checked_apart if {
	e := fx.event({"ref": "ok"})
	out := fx.decide_batch([
		e,
		fx.with_keys(e, {"ref": "age", "age": "ten"}),
		fx.with_keys(e, {"ref": "old", "age": 19}),
		fx.with_keys(e, {"ref": "withdrawn", "consent": fx.consent({"withdrawn": true})}),
		fx.with_keys(e, {"ref": "none", "consent": null}),
	])
	fx.allowed(out.ok.vc)
	out.age.vc.reasons == ["malformed_input"]
	fx.denied(out.old.vc, "consent_age_rule")
	out.withdrawn.vc.reasons == ["consent_withdrawn"]
	out.none.vc.reasons == ["consent_missing"]
}

# Events that look alike to the candidate rules but differ elsewhere (age, categories) are
# still decided apart: a candidate's decision is cached by the whole per-event view.
test_events_alike_for_candidates_decided_apart if {
	crime := {"legal_basis": "crime_prevention_u21", "purpose": "crime_prevention", "consent": null}
	police := fx.candidate("polis", "police", ["case_open"])
	e20 := fx.with_keys(fx.event(crime), {"ref": "20", "age": 20, "candidates": [police]})
	e21 := fx.with_keys(e20, {"ref": "21", "age": 21})
	other := fx.with_keys(fx.with_categories(e20, ["police"]), {"ref": "p"})
	out := fx.decide_batch([e20, e21, other])
	out["20"].polis.categories == ["concern", "identity"]
	fx.denied(out["21"].polis, "age_limit_exceeded")
	out.p.polis.categories == ["identity", "police"]
}

# Candidates that differ only in their org are read as one by the pair's rules (org ""), so
# that OPA decides them once; an org that the source or the consent's scope names keeps it.
test_org_read_only_where_a_rule_reads_it if {
	scope := object.union(fx.consent({}).scope, {"to_orgs": ["vc-named"]})
	e := fx.event({"consent": fx.consent({"scope": scope})})
	views := decide.candidates_as_read(
		[
			fx.candidate("vc-a", "health", ["listed"]),
			fx.candidate("vc-b", "health", ["listed"]),
			fx.candidate("vc-named", "health", ["listed"]),
			fx.candidate("skola", "school", ["enrolled"]),
			{"org": "odd", "kind": "health", "roles": "listed"},
		],
		e.source.org, scope.to_orgs,
	)
	views["vc-a"] == views["vc-b"]
	views["vc-a"].org == ""
	views["vc-named"].org == "vc-named"
	views.skola.org == "skola"
	views.odd.org == "odd"
}

# Where "" itself is what a rule compares with (an event whose source org is "", a scope
# naming ""), every org is read as it is: "" would answer those rules otherwise.
test_org_read_as_is_where_empty_would_answer_otherwise if {
	vc := fx.candidate("vc", "health", ["listed", "barnteam_member"])
	from_empty := fx.event({"source": {"org": "", "kind": "school", "municipality": "1492"}})
	fx.allowed(fx.decision(from_empty, "vc"))
	scope := object.union(fx.consent({}).scope, {"to_kinds": ["school"], "to_orgs": [""]})
	to_empty := fx.event({"consent": fx.consent({"scope": scope}), "candidates": [vc]})
	fx.denied(fx.decision(to_empty, "vc"), "consent_recipient_out_of_scope")
	every e in [from_empty, to_empty] {
		decide.candidates_as_read([vc], e.source.org, e.consent.scope.to_orgs).vc.org == "vc"
	}
}

# ---------------------------------------------------------------------------------------------
# the safety net

# Should an allowed answer ever be impossible to build, the pair is denied with a reason.
test_unbuildable_allow_is_indeterminate if {
	ev := {"event": base, "ground": {}, "failures": set(), "present": {"concern"}, "slice": {"concern"}, "banded": []}
	d := decide._conclude(ev, {}, {"concern"})
	d.allow == false
	d.reasons == ["indeterminate"]
}

_no_view(e) := e.no_such_attribute

# Should a decision ever be impossible to evaluate, the pair is denied with a reason.
test_unevaluable_decision_is_indeterminate if {
	decide.pair_decision({}, fx.candidate("vc", "health", ["listed"])) == decide.constant_denial("indeterminate")
	broken_view := decide.event_decisions(fx.event({})) with decide.event_view as {}
	broken_view == {"vc": decide.constant_denial("indeterminate")}
	no_view := decide.event_decisions(fx.event({})) with decide.event_view as _no_view
	no_view == {"vc": decide.constant_denial("indeterminate")}
}

# ---------------------------------------------------------------------------------------------
# faults and refusals

# A refusal by the rules is final; a broken question is a fault, for the router to hold.
test_fault_flag if {
	fx.decision(base, "vc").fault == false
	fx.decision(fx.with_keys(base, {"consent": null}), "vc").fault == false
	fx.decision(fx.with_keys(base, {"legal_basis": "no_such_ground"}), "vc").fault == false
	fx.decision(fx.with_keys(base, {"age": "ten"}), "vc").fault == true
	fx.decision(base, "vc").fault == true with data.data.banding as {}
	fx.decide_batch([base, base]).e1.vc.fault == true
	decide.constant_denial("indeterminate").fault == true
}
