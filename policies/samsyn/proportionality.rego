# METADATA
# title: Proportionality
# description: |
#   Under grounds flagged proportionality, *_detail categories go only to the child's close
#   circle (barnteam, plan: policies/data/proportionality/data.json) or to the listed
#   exceptions (social services with case_open).
package samsyn.proportionality

import data.samsyn.config

# METADATA
# scope: document
# title: Category proportionate for the recipient
# description: |
#   A ground that does not say proportionality false gets the rule. The detail marker is the
#   contract's: a category name ending in _detail.
proportionate(_, g, _) if g.proportionality == false

proportionate(_, _, cat) if {
	is_string(cat)
	not endswith(cat, "_detail")
}

proportionate(c, _, _) if close_circle(c)

proportionate(c, _, _) if {
	some ex in config.detail_exceptions
	c.kind == ex.recipient_kind
	ex.role in c.roles
}

# METADATA
# title: Recipient in the child's barnteam or plan
close_circle(c) if {
	some role in c.roles
	role in config.close_circle_roles
}
