"""The child as Samsyn knows it: a checked personal identity number and its keyed pseudonym.

The number is personal data at its most identifying, so it is parsed and checked once, at the
edge, and only its pseudonym travels inside the broker.
"""

from broker.subjects.personnummer import InvalidPersonnummer, Personnummer, luhn_digit, parse
from broker.subjects.pseudonym import Pseudonymiser

__all__ = ["InvalidPersonnummer", "Personnummer", "Pseudonymiser", "luhn_digit", "parse"]
