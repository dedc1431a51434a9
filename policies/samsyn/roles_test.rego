package samsyn.roles_test

import data.samsyn.fixtures_test as fx

# ---------------------------------------------------------------------------------------------
# a relationship is a role that fits the organisation's kind (data.data.vocabulary.roles)

# An unknown or mistyped role is no relationship.
test_unknown_role_is_no_relationship if {
	fx.denied(fx.only(fx.event({}), fx.candidate("vc", "health", ["barnteam-member"])), "no_relationship")
	fx.denied(fx.only(fx.event({}), fx.candidate("vc", "health", ["friend"])), "no_relationship")
}

# A role of another kind is no relationship: a health centre is never enrolled, a school never
# listed.
test_role_of_another_kind_is_no_relationship if {
	fx.denied(fx.only(fx.event({}), fx.candidate("vc", "health", ["enrolled"])), "no_relationship")
	e := fx.with_keys(fx.event({}), {"consent": fx.consent({"scope": object.union(fx.consent({}).scope, {"from_kinds": ["health"]})}), "source": {"org": "vc", "kind": "health", "municipality": null}})
	fx.denied(fx.only(e, fx.candidate("skola2", "school", ["listed"])), "no_relationship")
	fx.allowed(fx.only(e, fx.candidate("skola2", "school", ["enrolled"])))
}

# The role the ground asks for must fit too: a school "case_open" is no open case.
test_required_role_must_fit_kind if {
	e := fx.with_keys(fx.event({}), {"legal_basis": "social_services_inquiry", "purpose": "social_services_inquiry", "consent": null})
	fx.allowed(fx.only(e, fx.candidate("soc", "social_services", ["case_open"])))
	d := fx.only(e, fx.candidate("skola2", "school", ["case_open"]))
	fx.denied(d, "no_relationship")
	fx.denied(d, "recipient_role_missing")
}
