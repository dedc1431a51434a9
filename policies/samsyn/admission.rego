# METADATA
# title: Admission of an event at ingest
# description: |
#   What makes an event impossible to route, ever, so that the ingest refuses it (422) instead
#   of accepting it to be denied for every recipient: the ground does not carry its type or
#   purpose, does not let its source's kind disclose, the child is not under the ground's age
#   limit, or the report can reach no one. The same rules as the decisions (samsyn.grounds):
#   the ingest asks, it does not keep a copy. Query: POST /v1/data/samsyn/admission/verdicts
#   with {"input": {"events": [{type, source: {org, kind, municipality}, purpose, legal_basis,
#   municipality_extension, age, social_services_municipalities}, ...]}}: one query per
#   publish, however many events its batch holds (verdict: the same for {"event": {...}}).
package samsyn.admission

import data.samsyn.ceiling
import data.samsyn.config
import data.samsyn.decide
import data.samsyn.grounds

# METADATA
# scope: document
# title: May the event be accepted
# description: |
#   {admit, reasons, fault}: admit when nothing makes the event unroutable; otherwise the
#   sorted reason codes. fault (a reason in samsyn.decide.fault_reasons: broken input or policy
#   data) means the question could not be answered: the ingest then accepts and the router
#   holds the event, as for any fault.
default verdict := {"admit": false, "reasons": ["indeterminate"], "fault": true}

verdict := _verdict(input.event)

# METADATA
# scope: document
# title: May each event of a batch be accepted
# description: |
#   The verdict of each of input.events, in order: what verdict answers for each one alone.
verdicts := [_verdict(e) | some e in input.events]

_verdict(e) := {
	"admit": count(reasons) == 0,
	"reasons": sort(reasons),
	"fault": count(reasons & decide.fault_reasons) > 0,
} if {
	reasons := _refusals(e)
}

_refusals(e) := {"malformed_input"} if {
	not input_well_formed(e)
} else := ceiling.data_failures if {
	count(ceiling.data_failures) > 0
} else := f if {
	f := grounds.admission_failures(e, decide.ground_or_empty(e))
	count(f & {"unknown_ground", "ground_malformed"}) > 0
} else := union({
	grounds.admission_failures(e, decide.ground_or_empty(e)),
	{"municipality_not_for_this_source" | not extension_fits_source(e)},
	{"report_unreachable" | not report_reachable(e, decide.ground_or_empty(e))},
})

# METADATA
# scope: document
# title: The municipality extension is for sources without a municipality
# description: |
#   A source with a municipality reports to its own social services; naming another
#   municipality cannot redirect it (the extension naming its own is harmless).
extension_fits_source(e) if object.get(e, "municipality_extension", null) == null

extension_fits_source(e) if object.get(e.source, "municipality", null) == null

extension_fits_source(e) if e.municipality_extension == e.source.municipality

# METADATA
# scope: document
# title: A report reaches someone
# description: |
#   Under a ground whose recipient must sit in the report municipality, that municipality is
#   known and has social services (social_services_municipalities: the facts the ingest
#   gathered, among the municipalities the event could name).
report_reachable(_, g) if g.recipient_in_report_municipality == false

report_reachable(e, _) if grounds.report_municipality(e) in e.social_services_municipalities

# METADATA
# title: Admission input well formed
input_well_formed(e) if {
	is_string(e.type)
	is_string(e.source.org)
	e.source.kind in config.known_kinds
	decide.null_or_string(e.source, "municipality")
	decide.null_or_string(e, "municipality_extension")
	e.purpose in config.known_purposes
	is_string(e.legal_basis)
	decide.age_unknown_or_valid(e)
	config.is_string_array(e.social_services_municipalities)
}
