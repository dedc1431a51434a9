# METADATA
# title: Legal grounds, evaluated generically
# description: |
#   Checks an event and a candidate recipient against the record of the event's legal ground
#   (policies/data/grounds/<legal_basis>/data.json). There is no code per ground: a new
#   ground is a new record. Every check is a positive helper; a failure is its negation, so an
#   attribute that is missing from the input or the record fails the check. Negated helpers
#   take whole objects (e, c, g), never refs: OPA evaluates a ref argument before the
#   negation, so `not f(e.x)` is skipped, not true, when e.x is missing. The e given here is
#   a copy of the event reduced to the attributes these checks read (samsyn.decide's
#   ground_facts and candidate_facts): a check that reads another must be added there.
package samsyn.grounds

import data.samsyn.config
import data.samsyn.consent

# METADATA
# title: Reason codes from the legal ground, for the event
# description: |
#   The ground's checks that depend on the event alone (admission_failures) and the consent's
#   event checks. Empty when they all pass. Always defined. g is the ground's record ({} for
#   an unknown ground). unknown_ground and ground_malformed are reported alone.
event_failures(e, g) := _with_consent(admission_failures(admission_facts(e), g), e, g)

_with_consent(admission, e, g) := admission if {
	count(admission & {"unknown_ground", "ground_malformed"}) > 0
} else := admission | consent.event_failures(e, g)

# METADATA
# title: What the admission checks read of the event
# description: |
#   The event reduced to type, legal_basis, purpose, source and age, each as in the event or
#   missing as in the event. Why: OPA caches a function's result by its arguments, and
#   without the consent a source's events of one type about children of one age agree on
#   these, so they are checked once in a batch. A check that read another attribute would
#   find it missing and fail closed.
admission_facts(e) := object.filter(e, ["type", "legal_basis", "purpose", "source", "age"])

# METADATA
# title: Reason codes that no later fact can change
# description: |
#   The ground is known and well formed, and it carries the event's type and purpose, lets the
#   source's kind disclose and the child is under its age limit. A failure here means the event
#   can never be routed under the ground (the child only gets older), so the ingest refuses it
#   (samsyn.admission). Always defined; unknown_ground and ground_malformed are reported alone.
admission_failures(e, g) := {"unknown_ground"} if {
	not known(e)
} else := {"ground_malformed"} if {
	not config.well_formed_ground(g)
} else := union({
	{"type_not_allowed_for_ground" | not type_allowed(e, g)},
	{"purpose_not_allowed_for_ground" | not purpose_allowed(e, g)},
	{"source_kind_not_allowed" | not source_kind_allowed(e, g)},
	{"age_limit_exceeded" | not age_within_limit(e, g)},
})

# METADATA
# title: Reason codes from the legal ground, for a recipient
# description: |
#   The checks that depend on the recipient: relationship or report municipality, kind, kind
#   pair, role; plus the consent's recipient check. Empty when they all pass. Always defined.
#   Read only together with event_failures, which must be empty for any disclosure.
recipient_failures(e, c, g) := union({
	{"no_relationship" | not relevant(c, g)},
	{"not_report_municipality" | not in_report_municipality(e, c, g)},
	{"recipient_kind_not_allowed" | not recipient_kind_allowed(c, g)},
	{"kind_pair_not_allowed" | not kind_pair_allowed(e, c, g)},
	{"recipient_role_missing" | not recipient_role_present(c, g)},
	consent.recipient_failures(e, c, g),
})

# METADATA
# title: The event names a ground that has a record
known(e) if config.ground(e.legal_basis)

# METADATA
# scope: document
# title: Relevant
# description: |
#   The recipient has an active relationship to the child, that is a role that fits its kind
#   (samsyn.decide keeps only those in c.roles), unless the ground waives it. Where the ground
#   lets a stated reason stand in for it (emergency: nödöppning, a police patrol looking for a
#   missing child), a recipient that asked for access with a stated reason is relevant too.
relevant(_, g) if g.requires_relationship == false

relevant(c, _) if count(c.roles) > 0

relevant(c, g) if {
	g.stated_reason_suffices == true
	c.stated_reason == true
}

# METADATA
# scope: document
# title: Recipient in the report municipality
# description: Where the ground asks for it, the recipient sits in the report municipality.
in_report_municipality(_, _, g) if g.recipient_in_report_municipality == false

in_report_municipality(e, c, _) if c.municipality == report_municipality(e)

# METADATA
# title: The municipality whose social services receive a report
# description: |
#   The source's own municipality; the event's municipality extension only for a source that
#   has none (region, police). Undefined when neither names one: then no one can receive it.
report_municipality(e) := e.source.municipality if {
	is_string(e.source.municipality)
} else := e.municipality_extension if {
	object.get(e.source, "municipality", null) == null
	is_string(e.municipality_extension)
}

# METADATA
# title: The ground carries the event's type
# description: event_types lists the types that may travel under the ground (never null).
type_allowed(e, g) if e.type in g.event_types

# METADATA
# scope: document
# title: Purpose allowed by the ground
purpose_allowed(_, g) if g.purposes == null

purpose_allowed(e, g) if e.purpose in g.purposes

# METADATA
# title: Source kind allowed by the ground
# description: Listed in source_kinds (null = any) and not in excluded_source_kinds.
source_kind_allowed(e, g) if {
	kind := e.source.kind
	_listed_or_any(kind, g.source_kinds)
	is_array(g.excluded_source_kinds)
	not kind in g.excluded_source_kinds
}

# METADATA
# title: Recipient kind allowed by the ground
recipient_kind_allowed(c, g) if c.kind in g.recipient_kinds

# METADATA
# scope: document
# title: (source kind, recipient kind) pair allowed by the ground
# description: kind_pairs null means any pair of allowed kinds.
kind_pair_allowed(_, _, g) if g.kind_pairs == null

kind_pair_allowed(e, c, g) if [e.source.kind, c.kind] in g.kind_pairs

# METADATA
# scope: document
# title: Recipient holds a role the ground asks for
# description: recipient_roles_any null means no particular role.
recipient_role_present(_, g) if g.recipient_roles_any == null

recipient_role_present(c, g) if {
	some role in c.roles
	role in g.recipient_roles_any
}

# METADATA
# scope: document
# title: Child under the ground's age limit
# description: age_below null means no limit; with a limit, an unknown age fails.
age_within_limit(_, g) if g.age_below == null

age_within_limit(e, g) if {
	is_number(e.age)
	e.age < g.age_below
}

_listed_or_any(_, null)

_listed_or_any(x, allowed) if x in allowed
