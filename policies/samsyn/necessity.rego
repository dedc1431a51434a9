# METADATA
# title: Necessity
# description: |
#   The necessity matrix (policies/data/matrix/data.json): which categories a recipient kind
#   may receive for a purpose. A kind or purpose without a cell gets nothing; oversight has no
#   row and never receives anything.
package samsyn.necessity

import data.samsyn.config

# METADATA
# title: Category necessary for the recipient kind and purpose
# description: '"*" in a cell stands for every known category.'
necessary(kind, purpose, cat) if {
	cat in config.known_categories
	_in_cell(config.matrix[kind][purpose], cat)
}

_in_cell(cell, _) if "*" in cell

_in_cell(cell, cat) if cat in cell
