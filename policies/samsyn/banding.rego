# METADATA
# title: Banding
# description: |
#   Attendance figures (policies/data/banding/data.json fields) go to recipients other than
#   the exempt kinds as band labels. The policy sees field names, never values: it tells the
#   router which fields to band and with which bands; band_label is the reference for the
#   labels (min inclusive, max exclusive, null max = no upper bound).
package samsyn.banding

import data.samsyn.config

# METADATA
# title: Banded fields of the event
# description: "[field, category] for each field present that the banding names, by field name."
banded_fields(e) := [[field, cat] |
	some field in banded_field_names
	cat := e.fields[field]
]

# METADATA
# title: The banded field names, sorted
# description: |
#   Once per batch, so that each event only looks its few banded fields up among its fields
#   (instead of sorting and scanning all of them).
banded_field_names := sort({field | some field in config.banding.fields})

# METADATA
# title: Band transforms for a delivery
# description: |
#   One {field, op: "band", bands} entry per banded field whose category is shared. Always
#   defined; an unknown recipient kind is banded.
transforms(banded, c, shared) := [t |
	some [field, cat] in banded
	cat in shared
	not exempt(c)
	t := {"field": field, "op": "band", "bands": config.banding.bands}
]

# METADATA
# title: Recipient kind that sees exact figures
exempt(c) if c.kind in config.banding.exempt_recipient_kinds

# METADATA
# title: The band label for a value
band_label(bands, value) := band.label if {
	some band in bands
	band.min <= value
	_below_max(value, band.max)
}

_below_max(_, null)

_below_max(value, limit) if value < limit
