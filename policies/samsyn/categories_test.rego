package samsyn.categories_test

import data.samsyn.categories
import data.samsyn.fixtures_test as fx

# identity is not "present": it is added to every allowed delivery.
test_present_ignores_identity_and_non_strings if {
	categories.present({"categories": ["identity", "concern", 7, null]}) == {"concern"}
	categories.present({}) == set()
}

# identity goes with every allowed delivery and is never withheld.
test_identity_goes_with_every_allowed_delivery if {
	e := fx.with_categories(fx.event({}), ["concern", "wellbeing", "health_detail"])
	d := fx.decision(e, "vc")
	fx.allowed(d)
	d.categories == ["concern", "health_detail", "identity", "wellbeing"]
	not "identity" in d.withheld
}

# An event that carries nothing beyond identity is not shared: "something happened" is itself
# information.
test_identity_only_denies if {
	d := fx.decision(fx.event({"categories": ["identity"], "fields": {}}), "vc")
	d.allow == false
	d.reasons == ["nothing_necessary"]
	d.withheld == []
}

# A category outside the vocabulary never leaves the broker.
test_unknown_category_withheld if {
	d := fx.decision(fx.with_categories(fx.event({}), ["concern", "x_unknown"]), "vc")
	fx.allowed(d)
	d.categories == ["concern", "identity"]
	d.withheld == ["x_unknown"]
}

# A category is withheld when any one of necessity, ground, consent scope or proportionality
# cuts it; shared and withheld partition the categories present.
test_shared_and_withheld_partition_present if {
	e := fx.with_categories(
		fx.event({"consent": fx.consent({"scope": {"categories": ["concern", "wellbeing", "health_detail"]}})}),
		["concern", "wellbeing", "health", "health_detail", "police"],
	)
	d := fx.only(e, fx.candidate("vc", "health", ["listed"]))
	fx.allowed(d)
	d.categories == ["concern", "identity", "wellbeing"]
	d.withheld == ["health", "health_detail", "police"]
}

# A ground record without excluded_categories permits nothing.
test_permitted_by_ground_needs_the_list if {
	categories.permitted_by_ground({"excluded_categories": []}, "health")
	not categories.permitted_by_ground({"excluded_categories": ["health"]}, "health")
	not categories.permitted_by_ground({}, "health")
}
