# METADATA
# title: Samsyn sharing decisions
# description: |
#   For each event of a batch and each of its candidate recipients: may the event's
#   information go there, which categories, with which transforms and obligations, and if not,
#   why. Deny by default: a delivery is allowed only when no check fails and something beyond
#   identity remains. The router asks POST /v1/data/samsyn/decide/indexed_decisions (the
#   decisions, each distinct one once).
package samsyn.decide

import data.samsyn.banding
import data.samsyn.categories
import data.samsyn.ceiling
import data.samsyn.config
import data.samsyn.grounds

# METADATA
# title: Decisions
# description: |
#   event ref -> candidate org -> Decision, for every candidate of every event. What depends
#   on the event alone is evaluated once per event (event_view), then each candidate.
decisions[e.ref] := event_decisions(e) if {
	refs_unique
	some e in input.events
}

decisions[ref] := duplicate_ref_decisions(ref) if {
	not refs_unique
	some e in input.events
	ref := e.ref
}

# METADATA
# title: Decisions, each distinct one once
# description: |
#   The router's query: decisions as a table of the distinct Decision objects and, per event
#   ref and candidate org, the index of its decision in that table. The same answer as
#   decisions, in a fraction of the bytes: a batch's pairs share a few decisions (a Decision
#   names neither the event nor the recipient), and OPA converts its whole answer once more
#   for the decision log, so its size costs CPU twice in OPA and once in the router.
# entrypoint: true
indexed_decisions := {
	"table": _decision_table,
	"pairs": {ref: {org: _decision_index[d] | some org, d in per_org} | some ref, per_org in decisions},
}

# In the set's order, which is OPA's (deterministic) order of values.
_decision_table := [d | some d in {d | some per_org in decisions; some d in per_org}]

_decision_index[d] := i if some i, d in _decision_table

# METADATA
# title: Event refs unique in the batch
# description: |
#   A batch that repeats an event ref cannot be answered event by event: every pair of the
#   batch gets one constant denial (duplicate_event_ref) instead of an evaluation conflict.
refs_unique if {
	refs := [e.ref | some e in input.events]
	count(refs) == count({ref | some ref in refs})
}

duplicate_ref_decisions(ref) := {c.org: constant_denial("duplicate_event_ref") |
	some e in input.events
	e.ref == ref
	some c in e.candidates
}

# METADATA
# title: Decisions for the candidates of one event
# description: |
#   An event that names an organisation twice among its candidates gets one constant denial
#   per organisation (duplicate_candidate). Always defined.
event_decisions(e) := {c.org: constant_denial("duplicate_candidate") | some c in e.candidates} if {
	not candidates_unique(e)
} else := candidate_decisions(ev, views) if {
	ev := event_view(e)

	# What other_than_source and consent.recipient_in_scope compare a candidate's org with.
	views := candidates_as_read(
		e.candidates,
		object.get(e, ["source", "org"], null),
		object.get(e, ["consent", "scope", "to_orgs"], null),
	)
} else := {c.org: constant_denial("indeterminate") | some c in e.candidates}

# METADATA
# title: Decisions for an event view and its candidates as read
# description: |
#   A function of its own, so that OPA, which caches a function's result by its arguments,
#   serves the events of a batch that have one view and the same candidates as read (children
#   of one school with the same organisations around them, in the same relationships) with
#   one look-up for all their candidates instead of one per candidate.
candidate_decisions(ev, views) := {org: pair_decision(ev, view) | some org, view in views}

# METADATA
# title: Candidate organisations unique in the event
candidates_unique(e) if {
	orgs := [c.org | some c in e.candidates]
	count(orgs) == count({org | some org in orgs})
}

# METADATA
# title: What the event alone decides
# description: |
#   What the candidate rules read of the event (candidate_facts), its ground's record ({} if
#   unknown), the reason codes that do not depend on the recipient, the categories present,
#   the slice any recipient could get, and the banded fields. Each candidate's decision is a
#   function of this view and the candidate alone, so OPA evaluates it once per distinct
#   (view, candidate) in a batch.
event_view(e) := {
	"event": candidate_facts(e),
	"ground": g,
	"failures": event_failures(e, shape, g),
	"present": categories.present(shape),
	"slice": categories.event_slice(e, g),
	"banded": banding.banded_fields(shape),
} if {
	g := ground_or_empty(e)
	shape := event_shape(e)
}

# METADATA
# title: The event without what sets it apart from others of its kind
# description: |
#   The event without its ref, the child's age, the consent and the candidates: what the
#   envelope's checks, the categories present and the banded fields read. Why: OPA caches a
#   function's result by its arguments, and a source's events of one type agree on this
#   shape, so those checks run once per kind of event in a batch instead of once per event.
#   A check given the shape that read ref, age, consent or candidates would find them missing
#   and fail closed.
event_shape(e) := object.remove(e, ["ref", "age", "consent", "candidates"])

# METADATA
# title: What the candidate rules read of the event
# description: |
#   The event reduced to the attributes that the checks and the decision for a candidate read:
#   legal_basis, purpose, source, municipality_extension and, of the consent, whether there is
#   one and whom its scope names as recipients. Each is as in the event, or missing as in the
#   event (json.filter keeps a consent or a scope that is not an object as it is). Why: OPA
#   caches a function's result by its arguments, so the events of a batch that agree on these
#   (the same kind of event from the same source under the same consent scope) have a
#   recurring candidate decided once; with the whole event (ref, times, age) every pair would
#   be evaluated anew. A candidate rule that read any other attribute of the event would find
#   it missing here and fail closed.
candidate_facts(e) := json.filter(e, [
	["legal_basis"], ["purpose"], ["source"], ["municipality_extension"],
	["consent", "scope", "to_kinds"], ["consent", "scope", "to_orgs"],
])

# METADATA
# title: Decision for one event and one candidate
# description: |
#   Always defined; anything that cannot be evaluated is a denial. The categories to share
#   are worked out only once every check has passed (a denial names none).
pair_decision(ev, c) := d if {
	d := _decide(ev, c, pair_failures(ev, c))
} else := constant_denial("indeterminate")

# A failed check denies, with every failed check as a reason. Each branch states its own
# condition, so that a denial that cannot be built never falls through to the next one.
_decide(ev, c, failed) := _denied(ev, failed) if {
	count(failed) > 0
} else := _conclude(ev, c, categories.shared(ev.event, c, ev.ground, ev.slice)) if {
	count(failed) == 0
}

# Every check passed: allowed if something beyond identity goes; otherwise the reason is that
# nothing did (or, should the allowed answer be impossible to build, indeterminate).
_conclude(ev, c, shared) := d if {
	count(shared) > 0
	d := _allowed(ev, c, shared)
} else := _denied(ev, {"nothing_necessary"}) if {
	count(shared) == 0
} else := _denied(ev, {"indeterminate"})

_allowed(ev, c, shared) := {
	"allow": true,
	"legal_ground": ev.event.legal_basis,
	"statute": ev.ground.statute,
	"categories": sort(shared | {"identity"}),
	"withheld": sort(ev.present - shared),
	"transforms": banding.transforms(ev.banded, c, shared),
	"obligations": ev.ground.obligations,
	"review": review(ev.ground),
	"reasons": [],
	"fault": false,
}

# METADATA
# scope: document
# title: The disclosure is an open review item
# description: |
#   Under a ground whose record asks for a review afterwards (obligation review: emergency) or
#   that rests on no explicit provision of law (explicit_provision false): someone must look at
#   every such disclosure. Always defined.
default review(_) := false

review(g) if "review" in g.obligations

review(g) if g.explicit_provision == false

_denied(ev, reasons) := {
	"allow": false,
	"legal_ground": object.get(ev.event, "legal_basis", null),
	"statute": object.get(ev.ground, "statute", null),
	"categories": [],
	"withheld": sort(ev.present),
	"transforms": [],
	"obligations": [],
	"review": false,
	"reasons": sort(reasons),
	"fault": count(reasons & fault_reasons) > 0,
}

# METADATA
# title: Reasons that mean the question could not be answered
# description: |
#   A denial with one of these reasons (fault: true) says that the input, the batch or the
#   policy data is broken, not that the rules forbid the disclosure: the router should keep
#   the event waiting and raise an alarm rather than record a final refusal.
fault_reasons := {
	"malformed_input", "config_malformed", "config_exceeds_ceiling", "ground_malformed",
	"duplicate_event_ref", "duplicate_candidate", "indeterminate",
}

# METADATA
# title: A denial that needs nothing from the event
constant_denial(reason) := {
	"allow": false,
	"legal_ground": null,
	"statute": null,
	"categories": [],
	"withheld": [],
	"transforms": [],
	"obligations": [],
	"review": false,
	"reasons": [reason],
	"fault": reason in fault_reasons,
}

# METADATA
# title: The record of the event's ground, or {}
ground_or_empty(e) := g if {
	g := config.ground(e.legal_basis)
} else := {}

# METADATA
# title: Reason codes that do not depend on the recipient
# description: |
#   Malformed input or policy data is reported alone, since the finer checks cannot be read
#   on it. Always defined.
event_failures(e, shape, g) := {"malformed_input"} if {
	not event_well_formed(e, shape)
} else := ceiling.data_failures if {
	count(ceiling.data_failures) > 0
} else := grounds.event_failures(ground_facts(e), g)

# METADATA
# title: What the ground's event checks read of the event
# description: |
#   The event reduced to the attributes that grounds.event_failures and the consent's event
#   checks read: type, legal_basis, purpose, source, age and consent, each as in the event or missing
#   as in the event. Why: OPA caches a function's result by its arguments, so the events of a
#   batch that agree on these (the same child, source and consent) are checked once. A check
#   that read any other attribute of the event would find it missing and fail closed.
ground_facts(e) := object.filter(e, ["type", "legal_basis", "purpose", "source", "age", "consent"])

# Event failures that make the recipient checks unreadable: reported alone.
_dominant := {
	"malformed_input", "config_malformed", "config_exceeds_ceiling",
	"unknown_ground", "ground_malformed",
}

# METADATA
# title: Reason codes for one event and one candidate
# description: |
#   Empty only when every check passes; otherwise every failed check is reported, except
#   that a dominant event failure is reported alone. (nothing_necessary is not a check: it is
#   the reason when every check passed and nothing beyond identity remained.)
pair_failures(ev, c) := {"malformed_input"} if {
	not candidate_well_formed(c)
} else := ev.failures if {
	count(ev.failures & _dominant) > 0
} else := union({
	ev.failures,
	{"oversight_never_recipient" | not not_oversight(c)},
	{"recipient_is_source" | not other_than_source(ev.event, c)},
	grounds.recipient_failures(ev.event, c, ev.ground),
})

# METADATA
# title: Recipient is not an oversight body
# description: Fixed by the contract, not by data; oversight also has no row in the matrix.
not_oversight(c) if c.kind != "oversight"

# METADATA
# title: Recipient is not the source itself
other_than_source(e, c) if c.org != e.source.org

# METADATA
# title: Batch time readable
now_readable if is_number(time.parse_rfc3339_ns(input.now))

# METADATA
# title: Event well formed
# description: |
#   The attributes the rules read are present with their types, kinds and purposes are in the
#   vocabulary, now is an RFC 3339 time, and fields and categories describe the same data.
#   What the shape holds is checked once per shape (event_shape).
event_well_formed(e, shape) if {
	is_string(e.ref)
	age_unknown_or_valid(e)
	shape_well_formed(shape)
}

shape_well_formed(e) if {
	now_readable
	is_string(e.type)
	is_string(e.source.org)
	e.source.kind in config.known_kinds
	null_or_string(e.source, "municipality")
	null_or_string(e, "municipality_extension")
	e.purpose in config.known_purposes
	is_string(e.legal_basis)
	config.is_string_array(e.categories)
	is_object(e.fields)
	{cat | some cat in e.fields} == categories.present(e)
}

# METADATA
# scope: document
# title: The age is unknown (null or absent) or a number from 0
age_unknown_or_valid(e) if object.get(e, "age", null) == null

age_unknown_or_valid(e) if {
	is_number(e.age)
	e.age >= 0
}

# METADATA
# scope: document
# title: The attribute is present, a string or null
null_or_string(obj, key) if obj[key] == null

null_or_string(obj, key) if is_string(obj[key])

# METADATA
# title: Candidate well formed
# description: |
#   Its kind is in the vocabulary (oversight included, refused by its own rule); stated_reason,
#   when present, is a boolean (true only for an organisation that asked for access with a
#   stated reason: nödöppning).
candidate_well_formed(c) if {
	is_string(c.org)
	c.kind in config.known_kinds
	config.is_string_array(c.roles)
	is_boolean(object.get(c, "stated_reason", false))
}

# METADATA
# title: The candidates as the pair's rules read them, by org
# description: |
#   A function of the candidates and what their orgs are compared with, so that OPA evaluates
#   it once per candidate list (children with the same organisations around them) and source.
candidates_as_read(candidates, source_org, scope_orgs) := {c.org: view |
	some c in candidates
	view := org_as_read(recipient_view(c), source_org, scope_orgs)
}

# METADATA
# title: The candidate with its org as the pair's rules read it
# description: |
#   Two rules read a candidate's org: the recipient is not the event's source
#   (other_than_source), and the consent's scope may name it (consent.recipient_in_scope).
#   Where neither holds for the org, nor for "", the view carries "" instead: those rules
#   answer the same for both, and OPA, which caches pair_decision by its arguments, then
#   decides once the candidates that differ only in their org (the children of one school
#   with different health centres). A rule that read the org otherwise would have to be added
#   to the conditions here. A malformed candidate keeps its org, to be refused.
org_as_read(view, source_org, scope_orgs) := object.union(view, {"org": ""}) if {
	candidate_well_formed(view)
	org := view.org
	not _read_by_rules(org, source_org, scope_orgs)
	not _read_by_rules("", source_org, scope_orgs)
} else := view

_read_by_rules(org, source_org, _) if org == source_org

_read_by_rules(org, _, scope_orgs) if org in scope_orgs

# METADATA
# title: The candidate as the rules see it
# description: |
#   Its roles narrowed to those that fit its kind (data.data.vocabulary.roles): an unknown or
#   mistyped role, or one of another kind's (a school that is "listed"), is no relationship and
#   puts no one in the close circle. A malformed candidate is left as it is, to be refused.
recipient_view(c) := object.union(c, {"roles": [role |
	some role in c.roles
	role in config.roles_for(c.kind)
]}) if {
	candidate_well_formed(c)
} else := c
