package samsyn.banding_test

import data.samsyn.banding
import data.samsyn.fixtures_test as fx

attendance := fx.event({
	"type": "attendance.flagged",
	"categories": ["attendance"],
	"fields": {
		"period_start": "attendance",
		"period_end": "attendance",
		"absence_percent": "attendance",
		"unexcused_percent": "attendance",
	},
})

contract_bands := [
	{"label": "<10", "min": 0, "max": 10},
	{"label": "10-20", "min": 10, "max": 20},
	{"label": "20-50", "min": 20, "max": 50},
	{"label": ">=50", "min": 50, "max": null},
]

band_transform(field) := {"field": field, "op": "band", "bands": contract_bands}

# The health centre gets both percentages as bands, and the dates as they are.
test_health_gets_bands if {
	d := fx.decision(attendance, "vc")
	fx.allowed(d)
	d.transforms == [band_transform("absence_percent"), band_transform("unexcused_percent")]
}

# Social services and police get bands too.
test_social_services_and_police_get_bands if {
	every kind in ["social_services", "police"] {
		e := fx.with_keys(attendance, {"purpose": "crime_prevention", "legal_basis": "crime_prevention_u21", "consent": null})
		d := fx.only(e, fx.candidate("rcp", kind, ["case_open"]))
		fx.allowed(d)
		d.transforms == [band_transform("absence_percent"), band_transform("unexcused_percent")]
	}
}

# Preschool, school and student health see the exact figures.
test_exempt_kinds_get_exact_figures if {
	every kind in ["preschool", "school", "student_health"] {
		d := fx.only(attendance, fx.candidate("rcp", kind, ["enrolled"]))
		fx.allowed(d)
		d.transforms == []
	}
}

# Only the banded fields that the event carries are named.
test_only_present_fields_are_banded if {
	e := fx.with_keys(attendance, {"fields": {"period_start": "attendance", "unexcused_percent": "attendance"}})
	d := fx.decision(e, "vc")
	d.transforms == [band_transform("unexcused_percent")]
}

# A field whose category is withheld is not named in a transform.
test_withheld_fields_are_not_banded if {
	shared := {"concern"}
	banding.transforms(banding.banded_fields(attendance), {"kind": "health"}, shared) == []
}

# A recipient of unknown kind is banded rather than trusted with exact figures.
test_unknown_kind_is_banded if {
	count(banding.transforms(banding.banded_fields(attendance), {"kind": "kindergarten"}, {"attendance"})) == 2
}

# The shipped bands are the contract's.
test_bands_are_the_contracts if {
	data.data.banding.bands == contract_bands
}

# Labels, lower bound inclusive.
test_band_labels if {
	bands := data.data.banding.bands
	banding.band_label(bands, 0) == "<10"
	banding.band_label(bands, 9.99) == "<10"
	banding.band_label(bands, 10) == "10-20"
	banding.band_label(bands, 12) == "10-20"
	banding.band_label(bands, 19.99) == "10-20"
	banding.band_label(bands, 20) == "20-50"
	banding.band_label(bands, 23.5) == "20-50"
	banding.band_label(bands, 49.99) == "20-50"
	banding.band_label(bands, 50) == ">=50"
	banding.band_label(bands, 100) == ">=50"
}
