package samsyn.proportionality_test

import data.samsyn.fixtures_test as fx
import data.samsyn.proportionality

# A school's concern with its free-text detail, under consent, to a recipient with roles.
detail_to(kind, roles) := fx.only(
	fx.with_categories(fx.event({}), ["concern", "concern_detail"]),
	fx.candidate("rcp", kind, roles),
)

# Each close-circle role opens the detail.
test_close_circle_roles_get_detail if {
	every role in ["barnteam_member", "stodsamordnare", "sip_participant", "barnkontakt"] {
		d := detail_to("health", ["listed", role])
		fx.allowed(d)
		d.categories == ["concern", "concern_detail", "identity"]
	}
}

# A recipient outside the close circle gets the concern, not the detail.
test_outside_close_circle_detail_withheld if {
	d := detail_to("health", ["listed"])
	fx.allowed(d)
	d.categories == ["concern", "identity"]
	d.withheld == ["concern_detail"]
}

# Social services with an open case get the detail without being in the barnteam.
test_social_services_case_open_gets_detail if {
	d := detail_to("social_services", ["case_open"])
	fx.allowed(d)
	d.categories == ["concern", "concern_detail", "identity"]
}

# A role of another kind puts no one in the close circle: a health centre that declared
# itself a case_open (social services' and police's role) beside being listed gets no detail.
test_role_of_another_kind_opens_no_detail if {
	d := detail_to("health", ["listed", "case_open"])
	fx.allowed(d)
	d.withheld == ["concern_detail"]
}

# A close-circle role counts only for a kind it fits: police are never stodsamordnare.
test_close_circle_role_must_fit_kind if {
	e := fx.with_categories(fx.event({"legal_basis": "crime_prevention_u21", "purpose": "crime_prevention", "consent": null}), ["concern", "police_detail"])
	d := fx.only(e, fx.candidate("polis", "police", ["case_open", "stodsamordnare"]))
	fx.allowed(d)
	d.withheld == ["police_detail"]
	d2 := fx.only(e, fx.candidate("polis", "police", ["case_open", "barnteam_member"]))
	d2.categories == ["concern", "identity", "police_detail"]
}

# The case_open exception is for social services only: an open police matter is not enough.
test_case_open_exception_is_for_social_services_only if {
	not proportionality.proportionate({"kind": "police", "roles": ["case_open"]}, {"proportionality": true}, "police_detail")
	proportionality.proportionate({"kind": "social_services", "roles": ["case_open"]}, {"proportionality": true}, "social_detail")
}

# Under care_support_u18 the rule applies too: social services' detail stays out of reach of a
# health centre outside the barnteam.
test_care_support_cuts_detail_outside_close_circle if {
	e := fx.with_categories(
		fx.event({
			"source": {"org": "soc", "kind": "social_services", "municipality": "1492"},
			"legal_basis": "care_support_u18",
			"consent": null,
		}),
		["concern", "concern_detail"],
	)
	d := fx.only(e, fx.candidate("vc", "health", ["listed"]))
	fx.allowed(d)
	d.withheld == ["concern_detail"]
}

# Under a ground without proportionality (mandatory_report) the detail goes to social services
# with no role at all.
test_ground_without_proportionality_passes_detail if {
	proportionality.proportionate({"kind": "social_services", "roles": []}, {"proportionality": false}, "concern_detail")
}

# A ground that does not say proportionality false gets the rule.
test_missing_flag_applies_rule if {
	not proportionality.proportionate({"kind": "health", "roles": ["listed"]}, {}, "health_detail")
	proportionality.proportionate({"kind": "health", "roles": ["listed"]}, {}, "health")
}
