"""Swedish personal identity numbers (personnummer) and coordination numbers (samordningsnummer).

The contract identifies a child by the 12-digit number `YYYYMMDDNNNC` but lets integrators send
the shorter notations their systems print, so input is normalised here, once. The number also
gives the child's age, on which the legal grounds turn (15, 18, 21), so a number that is not a
real date or whose Luhn digit is wrong is refused rather than guessed at.

Error messages never repeat the input: they end up in logs and problem responses, and the input
is a personal identity number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

# A samordningsnummer is a personnummer whose day of birth has 60 added.
COORDINATION_DAY_OFFSET = 60

# Which notations are accepted; [0-9] rather than \d so that non-ASCII digits are refused.
_NOTATION = re.compile(
    r"(?P<century>[0-9]{2})?(?P<yymmdd>[0-9]{6})(?P<separator>[-+]?)(?P<rest>[0-9]{4})"
)
_ALLOWED_CHARACTERS = frozenset("0123456789-+")
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_NINE_DIGITS = re.compile(r"[0-9]{9}")


# The name states the domain fact ("an invalid personnummer"), as callers read it; N818 would
# have it end in "Error".
class InvalidPersonnummer(ValueError):
    """The input is not a valid personnummer or samordningsnummer; the message says why."""


def luhn_digit(nine: str) -> int:
    """The check digit of the nine digits `YYMMDDNNN` (the century takes no part in it)."""
    if not _NINE_DIGITS.fullmatch(nine):
        raise ValueError("the Luhn digit is computed over exactly nine ASCII digits")
    total = 0
    for position, character in enumerate(nine):
        product = int(character) * (2 if position % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return (10 - total % 10) % 10


@dataclass(frozen=True)
class Personnummer:
    """A checked number in canonical 12-digit form.

    Construction checks the form, the date and the Luhn digit, so holding an instance means
    holding a well-formed number. Whether the birth date lies in the future depends on the day
    it is checked, which is why that check is `parse`'s. `digits` is left out of `repr` so that
    logging an instance does not log the number.
    """

    digits: str = field(repr=False)

    def __post_init__(self) -> None:
        if not _TWELVE_DIGITS.fullmatch(self.digits):
            raise InvalidPersonnummer("the canonical form is exactly 12 ASCII digits")
        year, month, day = int(self.digits[:4]), int(self.digits[4:6]), int(self.digits[6:8])
        coordination = day > COORDINATION_DAY_OFFSET
        try:
            date(year, month, day - COORDINATION_DAY_OFFSET if coordination else day)
        except ValueError:
            raise InvalidPersonnummer(
                "the birth date is not a calendar date"
                + (" (a samordningsnummer adds 60 to the day)" if coordination else "")
            ) from None
        if luhn_digit(self.digits[2:11]) != int(self.digits[11]):
            raise InvalidPersonnummer("the check digit (Luhn) does not match")

    @property
    def is_coordination_number(self) -> bool:
        """Whether this is a samordningsnummer (day of birth + 60)."""
        return int(self.digits[6:8]) > COORDINATION_DAY_OFFSET

    @property
    def birth_date(self) -> date:
        """The date of birth the number states."""
        day = int(self.digits[6:8])
        if self.is_coordination_number:
            day -= COORDINATION_DAY_OFFSET
        return date(int(self.digits[:4]), int(self.digits[4:6]), day)

    def age_on(self, day: date) -> int:
        """Age in completed years on `day`.

        Someone born on 29 February completes a year on 1 March in common years: before then
        the full year has not passed.
        """
        born = self.birth_date
        if day < born:
            raise ValueError("the day lies before the birth date")
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def parse(raw: str, *, today: date | None = None) -> Personnummer:
    """Parse any accepted notation into the canonical number.

    Accepted: `YYYYMMDDNNNC`, `YYYYMMDD-NNNC`, `YYMMDD-NNNC`, `YYMMDDNNNC` and `YYMMDD+NNNC`.
    A two-digit year takes the most recent century in which the birth date is not after
    `today`; with `+` (the separator for people aged 100 or more) the most recent century in
    which the person is at least 100 on `today`. `today` defaults to the local date and is a
    parameter so that the century rule can be tested on any day.
    """
    reference = date.today() if today is None else today
    if not set(raw) <= _ALLOWED_CHARACTERS:
        raise InvalidPersonnummer("only digits and one '-' or '+' before the last four are allowed")
    digit_count = sum(character.isdigit() for character in raw)
    if digit_count not in (10, 12):
        raise InvalidPersonnummer(
            f"has {digit_count} digits; expected 10 (YYMMDDNNNC) or 12 (YYYYMMDDNNNC)"
        )
    match = _NOTATION.fullmatch(raw)
    if match is None:
        raise InvalidPersonnummer("a '-' or '+' may only stand right before the last four digits")
    century, yymmdd, separator = match["century"], match["yymmdd"], match["separator"]
    if century is not None and separator == "+":
        raise InvalidPersonnummer(
            "'+' marks age 100 or more in the 10-digit form; a 12-digit number states its century"
        )
    year = (
        int(century + yymmdd[:2])
        if century is not None
        else _resolve_century(
            int(yymmdd[:2]), yymmdd[2:], centenarian=separator == "+", today=reference
        )
    )
    number = Personnummer(f"{year:04d}{yymmdd[2:]}{match['rest']}")
    if number.birth_date > reference:
        raise InvalidPersonnummer("the birth date lies in the future")
    return number


def _resolve_century(yy: int, mmdd: str, *, centenarian: bool, today: date) -> int:
    """The full birth year for a two-digit year, by the separator rule described in `parse`.

    Month and day are compared as numbers, not as a date, so an impossible date still gets a
    year and is then refused with the right message by `Personnummer`.
    """
    month, day = int(mmdd[:2]), int(mmdd[2:])
    if day > COORDINATION_DAY_OFFSET:
        day -= COORDINATION_DAY_OFFSET
    latest = (today.year - 100 if centenarian else today.year, today.month, today.day)
    year = latest[0] - (latest[0] - yy) % 100
    if (year, month, day) > latest:
        year -= 100
    return year
