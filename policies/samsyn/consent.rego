# METADATA
# title: Consent
# description: |
#   For grounds with requires_consent: the referenced consent is active now, is for this
#   child, its scope names the source, the recipient and the purpose, and it was given by the
#   person the age rules (policies/data/consent/data.json) ask for. Categories outside the
#   scope are cut, not denied (see within_scope). event_failures and recipient_failures are
#   given a copy of the event reduced to what they read (samsyn.decide's ground_facts and
#   candidate_facts): a check that reads another attribute must be added there.
package samsyn.consent

import data.samsyn.config

# METADATA
# title: Reason codes from the consent, for the event
# description: |
#   Empty when the ground needs no consent or the consent carries the event: present, not
#   withdrawn, valid now, for this child, naming the source and the purpose, given by the
#   right person. Always defined. A ground that does not say requires_consent false needs a
#   consent. Negated helpers take whole objects (e, c), never refs: OPA evaluates a ref
#   argument before the negation, so `not f(e.consent)` would be skipped, not true, when
#   e.consent is missing.
event_failures(e, g) := set() if {
	g.requires_consent == false
} else := {"consent_missing"} if {
	not present(e)
} else := union({
	{"consent_withdrawn" | not not_withdrawn(e)},
	{"consent_not_yet_valid" | not started(e)},
	{"consent_expired" | not unexpired(e)},
	{"consent_other_subject" | not same_subject(e)},
	{"consent_source_out_of_scope" | not source_in_scope(e)},
	{"consent_purpose_out_of_scope" | not purpose_in_scope(e)},
	{"consent_age_rule" | not age_rule_satisfied(e)},
})

# METADATA
# title: Reason codes from the consent, for a recipient
# description: |
#   The scope names the recipient. Empty when the ground needs no consent; when the consent is
#   missing, event_failures already says so.
recipient_failures(e, c, g) := set() if {
	g.requires_consent == false
} else := set() if {
	not present(e)
} else := {"consent_recipient_out_of_scope" | not recipient_in_scope(e, c)}

# METADATA
# scope: document
# title: Consent within scope for a category
# description: Under a ground that needs consent, a category goes only if the scope names it.
within_scope(_, g, _) if g.requires_consent == false

within_scope(e, _, cat) if cat in e.consent.scope.categories

# METADATA
# title: Now, in nanoseconds
now_ns := time.parse_rfc3339_ns(input.now)

# METADATA
# title: The event cites a known consent
present(e) if is_object(e.consent)

# METADATA
# title: Not withdrawn
not_withdrawn(e) if e.consent.withdrawn == false

# METADATA
# title: Valid from has passed
started(e) if time.parse_rfc3339_ns(e.consent.valid_from) <= now_ns

# METADATA
# title: Valid until has not passed
# description: valid_until is exclusive.
unexpired(e) if now_ns < time.parse_rfc3339_ns(e.consent.valid_until)

# METADATA
# title: The consent is for this child
same_subject(e) if e.consent.subject_matches == true

# METADATA
# scope: document
# title: The scope names the disclosing organisation or its kind
source_in_scope(e) if e.source.kind in e.consent.scope.from_kinds

source_in_scope(e) if e.source.org in e.consent.scope.from_orgs

# METADATA
# scope: document
# title: The scope names the recipient organisation or its kind
recipient_in_scope(e, c) if c.kind in e.consent.scope.to_kinds

recipient_in_scope(e, c) if c.org in e.consent.scope.to_orgs

# METADATA
# title: The scope names the purpose
purpose_in_scope(e) if e.purpose in e.consent.scope.purposes

# METADATA
# title: Given by the right person for the child's age
# description: |
#   Every age rule that applies to the child's age names roles that must all be among
#   given_by. An unknown age, or an age no rule covers, fails.
age_rule_satisfied(e) if {
	is_number(e.age)
	_given_by_enough(e.age, {role | some role in e.consent.given_by})
}

# The rules for the age, met by the roles that gave the consent. A function of the age and the
# roles alone, so that OPA, which caches a function's result by its arguments, evaluates it
# once per combination in a batch rather than once per event.
_given_by_enough(age, given) if {
	rules := [rule | some rule in config.consent_age_rules; _applies(rule, age)]
	count(rules) > 0
	every rule in rules {
		every role in rule.required_given_by {
			role in given
		}
	}
}

_applies(rule, age) if {
	age >= rule.from_age
	_below(age, rule.below_age)
}

_below(_, null)

_below(age, limit) if age < limit
