# METADATA
# title: Categories
# description: |
#   Which of the categories present in an event go to a recipient: those that are necessary
#   (matrix), not excluded by the ground, within the consent's scope (when the ground needs
#   consent), and proportionate. The rest is withheld. identity is added by samsyn.decide.
package samsyn.categories

import data.samsyn.consent
import data.samsyn.necessity
import data.samsyn.proportionality

# METADATA
# title: Categories present in the event
# description: identity is never counted as present; it goes with every allowed delivery.
present(e) := {cat | some cat in e.categories; is_string(cat); cat != "identity"}

# METADATA
# title: Categories the event may give up
# description: |
#   The categories present that the ground does not exclude and, when the ground needs
#   consent, that the consent's scope names: what any recipient could get. Always defined.
event_slice(e, g) := {cat |
	some cat in present(e)
	permitted_by_ground(g, cat)
	consent.within_scope(e, g, cat)
}

# METADATA
# title: Categories that go to the recipient
# description: Of the event's slice, those necessary and proportionate for this recipient.
shared(e, c, g, slice) := {cat |
	some cat in slice
	necessity.necessary(c.kind, e.purpose, cat)
	proportionality.proportionate(c, g, cat)
}

# METADATA
# title: Category not excluded by the ground
permitted_by_ground(g, cat) if {
	is_array(g.excluded_categories)
	not cat in g.excluded_categories
}
