package samsyn.consent_test

import data.samsyn.consent
import data.samsyn.fixtures_test as fx

# The decision for the health centre vc when the school's event cites a consent built from
# the fixture's full consent with overrides (nested objects merge).
with_consent(overrides) := fx.decision(fx.event({"consent": fx.consent(overrides)}), "vc")

# The same, for a child of the given age whose consent was given by the given roles.
given(age, roles) := fx.decision(
	fx.event({"age": age, "consent": fx.with_keys(fx.consent({}), {"given_by": roles})}),
	"vc",
)

# ---------------------------------------------------------------------------------------------
# present, active, for this child

# An event under the consent ground that names no known consent shares nothing.
test_null_consent_denies if {
	d := fx.decision(fx.event({"consent": null}), "vc")
	fx.denied(d, "consent_missing")
	d.reasons == ["consent_missing"]
}

# A missing consent attribute is the same as no consent.
test_absent_consent_denies if {
	fx.denied(fx.decision(object.remove(fx.event({}), ["consent"]), "vc"), "consent_missing")
}

# Nothing more is shared under a withdrawn consent.
test_withdrawn_consent_denies if {
	fx.denied(with_consent({"withdrawn": true}), "consent_withdrawn")
}

# A consent that does not say it is not withdrawn is taken as withdrawn.
test_unknown_withdrawal_denies if {
	d := fx.decision(fx.event({"consent": object.remove(fx.consent({}), ["withdrawn"])}), "vc")
	fx.denied(d, "consent_withdrawn")
}

# A consent that starts next week opens nothing today.
test_future_consent_denies if {
	fx.denied(with_consent({"valid_from": "2026-12-03T10:00:00Z"}), "consent_not_yet_valid")
}

# valid_from is inclusive: a consent valid from this instant opens.
test_consent_valid_from_now_allows if {
	fx.allowed(with_consent({"valid_from": fx.now}))
}

# valid_until is exclusive: at that instant the consent no longer opens anything.
test_consent_valid_until_now_denies if {
	fx.denied(with_consent({"valid_until": fx.now}), "consent_expired")
}

# A consent that ran out last month opens nothing.
test_expired_consent_denies if {
	fx.denied(with_consent({"valid_until": "2026-10-31T00:00:00Z"}), "consent_expired")
}

# An unreadable validity window fails closed.
test_unreadable_validity_denies if {
	d := with_consent({"valid_from": "last week", "valid_until": "soon"})
	fx.denied(d, "consent_not_yet_valid")
	fx.denied(d, "consent_expired")
}

# A consent given for another child opens nothing for this one.
test_other_subject_denies if {
	fx.denied(with_consent({"subject_matches": false}), "consent_other_subject")
}

# ---------------------------------------------------------------------------------------------
# scope: source, recipient, purpose, categories

# The disclosing kind must be named: a consent for the school does not open health care.
test_source_kind_out_of_scope_denies if {
	fx.denied(with_consent({"scope": {"from_kinds": ["health"]}}), "consent_source_out_of_scope")
}

# Naming the disclosing organisation is enough.
test_source_org_in_scope_allows if {
	fx.allowed(with_consent({"scope": {"from_kinds": [], "from_orgs": ["skola"]}}))
}

# A scope that names only organisations (no from_kinds key at all) works too.
test_source_orgs_only_allows if {
	c := fx.consent({"scope": {"from_orgs": ["skola"]}})
	scope := object.remove(c.scope, ["from_kinds"])
	d := fx.decision(fx.event({"consent": fx.with_keys(c, {"scope": scope})}), "vc")
	fx.allowed(d)
}

# A consent given to another school does not open this one.
test_source_org_out_of_scope_denies if {
	d := with_consent({"scope": {"from_kinds": [], "from_orgs": ["annan-skola"]}})
	fx.denied(d, "consent_source_out_of_scope")
}

# The recipient kind must be named.
test_recipient_kind_out_of_scope_denies if {
	d := with_consent({"scope": {"to_kinds": ["social_services"]}})
	fx.denied(d, "consent_recipient_out_of_scope")
}

# Naming the recipient organisation is enough; another organisation of the same kind is not
# covered.
test_recipient_org_scope if {
	e := fx.event({
		"consent": fx.consent({"scope": {"to_kinds": [], "to_orgs": ["vc"]}}),
		"candidates": [
			fx.candidate("vc", "health", ["listed", "barnteam_member"]),
			fx.candidate("vc2", "health", ["listed", "barnteam_member"]),
		],
	})
	fx.allowed(fx.decision(e, "vc"))
	fx.denied(fx.decision(e, "vc2"), "consent_recipient_out_of_scope")
}

# The purpose must be named.
test_purpose_out_of_scope_denies if {
	d := with_consent({"scope": {"purposes": ["child_plan"]}})
	fx.denied(d, "consent_purpose_out_of_scope")
}

# Categories outside the scope are cut, the rest goes.
test_categories_outside_scope_are_withheld if {
	e := fx.with_categories(fx.event({"consent": fx.consent({"scope": {"categories": ["concern"]}})}), ["concern", "wellbeing"])
	d := fx.decision(e, "vc")
	fx.allowed(d)
	d.categories == ["concern", "identity"]
	d.withheld == ["wellbeing"]
}

# When the scope cuts everything, nothing (not even identity) goes.
test_scope_cutting_everything_denies if {
	d := with_consent({"scope": {"categories": ["plan"]}})
	d.reasons == ["nothing_necessary"]
	d.withheld == ["concern"]
}

# A scope without categories cuts everything.
test_scope_without_categories_denies if {
	c := fx.consent({})
	scope := object.remove(c.scope, ["categories"])
	d := fx.decision(fx.event({"consent": fx.with_keys(c, {"scope": scope})}), "vc")
	fx.denied(d, "nothing_necessary")
}

# ---------------------------------------------------------------------------------------------
# who gives the consent, by age (OSL 12 kap 3 §)

# Under 15 the guardians decide.
test_age_14_guardian_allows if {
	fx.allowed(given(14, ["guardian"]))
}

# Under 15 the child's own consent is not enough.
test_age_14_child_alone_denies if {
	fx.denied(given(14, ["child"]), "consent_age_rule")
}

# Under 15, guardian and child together.
test_age_14_guardian_and_child_allows if {
	fx.allowed(given(14, ["guardian", "child"]))
}

# From 15 a guardian's consent alone no longer suffices.
test_age_15_guardian_alone_denies if {
	fx.denied(given(15, ["guardian"]), "consent_age_rule")
}

# From 15 the child decides.
test_age_15_child_allows if {
	fx.allowed(given(15, ["child"]))
}

# At 17 the child still decides, alone.
test_age_17_child_allows if {
	fx.allowed(given(17, ["child"]))
}

# At 17 the guardians cannot decide for the child.
test_age_17_guardian_alone_denies if {
	fx.denied(given(17, ["guardian"]), "consent_age_rule")
}

# From 18 only the person's own consent counts.
test_age_18_own_allows if {
	fx.allowed(given(18, ["child"]))
}

# From 18 a guardian's consent is no consent.
test_age_18_guardian_denies if {
	fx.denied(given(18, ["guardian"]), "consent_age_rule")
}

# No one gave it: denied at every age.
test_nobody_gave_it_denies if {
	every age in [3, 15, 30] {
		fx.denied(given(age, []), "consent_age_rule")
	}
}

# Without the child's age the consent cannot be checked.
test_unknown_age_denies if {
	fx.denied(given(null, ["guardian", "child"]), "consent_age_rule")
}

# An age no rule covers fails, should a municipality leave a gap in the age rules.
test_age_without_rule_denies if {
	rules := [{"from_age": 0, "below_age": 15, "required_given_by": ["guardian"]}]
	fx.denied(given(16, ["child"]), "consent_age_rule") with data.data.consent.age_rules as rules
}

# ---------------------------------------------------------------------------------------------
# helpers

# Only a ground that says requires_consent false skips the consent.
test_failures_need_explicit_exemption if {
	consent.event_failures({"consent": null}, {"requires_consent": false}) == set()
	consent.event_failures({"consent": null}, {}) == {"consent_missing"}
	consent.event_failures({"consent": null}, {"requires_consent": "no"}) == {"consent_missing"}
	consent.recipient_failures({"consent": null}, {}, {"requires_consent": false}) == set()
	consent.recipient_failures({"consent": {}}, {"kind": "health"}, {}) == {"consent_recipient_out_of_scope"}
}

# Outside consent grounds the scope does not cut.
test_within_scope_without_consent_ground if {
	consent.within_scope({}, {"requires_consent": false}, "health")
	not consent.within_scope({}, {"requires_consent": true}, "health")
}
