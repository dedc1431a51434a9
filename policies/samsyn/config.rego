# METADATA
# title: Samsyn policy data
# description: |
#   The one place that reads the policy data (policies/data/**/data.json, loaded by OPA
#   under data.data) and says whether it is well formed. Nothing here decides; a record that
#   is missing or malformed makes every decision that depends on it a denial.
package samsyn.config

# METADATA
# entrypoint: true
# title: Legal grounds by name
# description: One record per ground, from policies/data/grounds/<name>/data.json.
grounds := data.data.grounds

# METADATA
# title: Necessity matrix
# description: recipient kind -> purpose -> categories; "*" stands for every known category.
matrix := data.data.matrix

# METADATA
# title: Known categories
# description: The category vocabulary; a category outside it never leaves the broker.
known_categories contains cat if {
	some cat in data.data.vocabulary.categories
	is_string(cat)
}

# METADATA
# title: Known organisation kinds
known_kinds contains kind if {
	some kind in data.data.vocabulary.kinds
	is_string(kind)
}

# METADATA
# title: Known purposes
known_purposes contains purpose if {
	some purpose in data.data.vocabulary.purposes
	is_string(purpose)
}

# METADATA
# title: Close-circle roles
# description: Roles that put a recipient in the child's barnteam or plan.
close_circle_roles := {role | some role in data.data.proportionality.close_circle_roles}

# METADATA
# title: Detail exceptions
# description: "{recipient_kind, role} pairs that may receive *_detail categories outside the close circle."
detail_exceptions := data.data.proportionality.exceptions

# METADATA
# title: Consent age rules
# description: "Who must give a consent, by the child's age: {from_age, below_age, required_given_by}."
consent_age_rules := data.data.consent.age_rules

# METADATA
# title: Banding of attendance figures
banding := data.data.banding

# METADATA
# title: The ground record for a name
# description: Undefined for a name that has no record.
ground(name) := grounds[name]

# METADATA
# title: Array of strings
is_string_array(xs) if {
	is_array(xs)
	every x in xs {
		is_string(x)
	}
}

# METADATA
# scope: document
# title: Policy data well formed
# description: |
#   The data that every decision relies on has the shape the rules expect. When it does not,
#   every decision is a denial with reason config_malformed.
default well_formed := false

well_formed if {
	_matrix_well_formed
	is_string_array(data.data.vocabulary.categories)
	is_string_array(data.data.vocabulary.kinds)
	is_string_array(data.data.vocabulary.purposes)
	_proportionality_well_formed
	_consent_well_formed
	_banding_well_formed
}

_matrix_well_formed if {
	is_object(matrix)
	every row in matrix {
		is_object(row)
		every cell in row {
			is_string_array(cell)
		}
	}
}

_proportionality_well_formed if {
	is_string_array(data.data.proportionality.close_circle_roles)
	is_array(detail_exceptions)
	every ex in detail_exceptions {
		is_string(ex.recipient_kind)
		is_string(ex.role)
	}
}

_consent_well_formed if {
	is_array(consent_age_rules)
	count(consent_age_rules) > 0
	every rule in consent_age_rules {
		is_number(rule.from_age)
		_null_or_number(rule.below_age)
		is_string_array(rule.required_given_by)
		count(rule.required_given_by) > 0
	}
}

_banding_well_formed if {
	is_string_array(banding.fields)
	is_string_array(banding.exempt_recipient_kinds)
	is_array(banding.bands)
	banding.bands[0].min == 0
	every i, band in banding.bands {
		is_string(band.label)
		_band_closed_by_next(banding.bands, i, band)
	}
}

# Bands cover [0, infinity) without gap or overlap: each ends where the next begins, the last
# has no upper bound.
_band_closed_by_next(bands, i, band) if {
	i == count(bands) - 1
	band.max == null
}

_band_closed_by_next(bands, i, band) if {
	band.max > band.min
	bands[i + 1].min == band.max
}

# METADATA
# title: Ground record well formed
# description: |
#   Every field of a ground record is present with its type; null is allowed only where it
#   means "no limit" (purposes, source_kinds, kind_pairs, age_below, recipient_roles_any).
#   A ground must tie the recipient to the child: by a relationship or by the report
#   municipality.
well_formed_ground(g) if {
	is_string(g.statute)
	_null_or_strings(g.purposes)
	_null_or_strings(g.source_kinds)
	is_string_array(g.excluded_source_kinds)
	is_string_array(g.recipient_kinds)
	_null_or_pairs(g.kind_pairs)
	_null_or_number(g.age_below)
	is_boolean(g.requires_consent)
	is_boolean(g.requires_relationship)
	is_boolean(g.recipient_in_report_municipality)
	_ties_recipient_to_child(g)
	_null_or_strings(g.recipient_roles_any)
	is_string_array(g.excluded_categories)
	is_boolean(g.proportionality)
	is_string_array(g.obligations)
}

_ties_recipient_to_child(g) if g.requires_relationship == true

_ties_recipient_to_child(g) if g.recipient_in_report_municipality == true

_null_or_strings(null)

_null_or_strings(xs) if is_string_array(xs)

_null_or_number(null)

_null_or_number(x) if is_number(x)

_null_or_pairs(null)

_null_or_pairs(pairs) if {
	is_array(pairs)
	every pair in pairs {
		is_string_array(pair)
		count(pair) == 2
	}
}
