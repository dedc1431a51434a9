"""Parsing, checking and ageing of personnummer and samordningsnummer.

Generated numbers use serials 980-999, a range no real person has, so no test ever holds a real
identity number.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.subjects.personnummer import InvalidPersonnummer, Personnummer, luhn_digit, parse

TODAY = date(2026, 11, 23)
FICTIONAL_SERIALS = st.integers(min_value=980, max_value=999)


def luhn_valid(ten: str) -> bool:
    """Independent oracle: the validating form of Luhn over all ten digits."""
    total = 0
    for position, character in enumerate(ten):
        product = int(character) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return total % 10 == 0


def with_check(eleven: str) -> str:
    """Complete `YYYYMMDDNNN` (any date, even an impossible one) with its Luhn digit."""
    return next(eleven + c for c in "0123456789" if luhn_valid(eleven[2:] + c))


def make_test_number(birth: date, serial: int, *, coordination: bool = False) -> str:
    """A fictional 12-digit number born on `birth`; a samordningsnummer if `coordination`."""
    day = birth.day + (60 if coordination else 0)
    return with_check(f"{birth.year:04d}{birth.month:02d}{day:02d}{serial:03d}")


def is_centenarian(birth: date, today: date) -> bool:
    """Whether someone born on `birth` is 100 or older on `today` (the '+' separator)."""
    return (birth.year + 100, birth.month, birth.day) <= (today.year, today.month, today.day)


def anniversary(birth: date, years: int) -> date:
    """The day a person completes `years`: 29 February falls on 1 March in common years."""
    try:
        return birth.replace(year=birth.year + years)
    except ValueError:
        return date(birth.year + years, 3, 1)


@st.composite
def people(draw: st.DrawFn) -> tuple[date, date, str, bool]:
    """A reference day, a birth date up to 190 years before it, and a fictional number."""
    today = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    birth = draw(st.dates(min_value=date(today.year - 190, 1, 1), max_value=today))
    coordination = draw(st.booleans())
    number = make_test_number(birth, draw(FICTIONAL_SERIALS), coordination=coordination)
    return today, birth, number, coordination


@given(people())
def test_every_notation_round_trips(person: tuple[date, date, str, bool]) -> None:
    """Every notation of a valid number parses to the same canonical 12 digits and birth date."""
    today, birth, twelve, coordination = person
    separator = "+" if is_centenarian(birth, today) else "-"
    notations = [twelve, f"{twelve[:8]}-{twelve[8:]}", f"{twelve[2:8]}{separator}{twelve[8:]}"]
    if separator == "-":
        notations.append(twelve[2:])
    for notation in notations:
        parsed = parse(notation, today=today)
        assert parsed.digits == twelve
        assert parsed.birth_date == birth
        assert parsed.is_coordination_number is coordination


@given(people(), st.integers(min_value=1, max_value=9))
def test_a_changed_check_digit_is_rejected(
    person: tuple[date, date, str, bool], shift: int
) -> None:
    """Any check digit other than the Luhn digit is refused, and the message says so."""
    today, _, twelve, _ = person
    wrong = twelve[:11] + str((int(twelve[11]) + shift) % 10)
    with pytest.raises(InvalidPersonnummer, match="check digit"):
        parse(wrong, today=today)


@given(people(), st.integers(min_value=2, max_value=10), st.integers(min_value=1, max_value=9))
def test_any_single_digit_error_after_the_century_is_rejected(
    person: tuple[date, date, str, bool], position: int, shift: int
) -> None:
    """A mistyped digit in YYMMDDNNN never yields another valid number (Luhn or date catch it)."""
    today, _, twelve, _ = person
    typo = twelve[:position] + str((int(twelve[position]) + shift) % 10) + twelve[position + 1 :]
    with pytest.raises(InvalidPersonnummer):
        parse(typo, today=today)


@given(people())
def test_ten_digits_without_separator_mean_under_100(person: tuple[date, date, str, bool]) -> None:
    """Ten bare digits take the most recent century not in the future, as '-' does."""
    today, birth, twelve, _ = person
    if not is_centenarian(birth, today):
        assert parse(twelve[2:], today=today).birth_date == birth
        return
    try:
        expected = birth.replace(year=birth.year + 100)
    except ValueError:  # 29 February in a century year that is not a leap year
        with pytest.raises(InvalidPersonnummer, match="calendar date"):
            parse(twelve[2:], today=today)
    else:
        assert parse(twelve[2:], today=today).birth_date == expected


@pytest.mark.parametrize(
    ("yymmdd", "separator", "born"),
    [
        ("261122", "-", date(2026, 11, 22)),
        ("261123", "-", date(2026, 11, 23)),
        ("261124", "-", date(1926, 11, 24)),
        ("261124", "", date(1926, 11, 24)),
        ("000101", "-", date(2000, 1, 1)),
        ("991231", "-", date(1999, 12, 31)),
        ("261123", "+", date(1926, 11, 23)),
        ("261124", "+", date(1826, 11, 24)),
        ("201124", "+", date(1920, 11, 24)),
    ],
)
def test_century_of_a_two_digit_year(yymmdd: str, separator: str, born: date) -> None:
    """'-' or none: latest birth not after today; '+': latest birth at least 100 years ago."""
    twelve = make_test_number(born, 981)
    assert parse(f"{yymmdd}{separator}{twelve[8:]}", today=TODAY).birth_date == born


def test_samordningsnummer_is_accepted() -> None:
    """Day + 60 marks a samordningsnummer; its birth date and age come from the real day."""
    number = parse(make_test_number(date(2012, 6, 1), 985, coordination=True), today=TODAY)
    assert number.digits[6:8] == "61"
    assert number.is_coordination_number
    assert number.birth_date == date(2012, 6, 1)
    assert number.age_on(TODAY) == 14


@given(people(), st.integers(min_value=1, max_value=120))
def test_age_turns_on_the_anniversary(person: tuple[date, date, str, bool], years: int) -> None:
    """The age is `years` on the anniversary and `years - 1` the day before it."""
    _, birth, twelve, _ = person
    number = Personnummer(twelve)
    day = anniversary(birth, years)
    assert number.age_on(day) == years
    assert number.age_on(day - timedelta(days=1)) == years - 1
    assert number.age_on(birth) == 0


@pytest.mark.parametrize(
    ("day", "age"),
    [
        (date(2013, 2, 28), 0),
        (date(2013, 3, 1), 1),
        (date(2016, 2, 28), 3),
        (date(2016, 2, 29), 4),
        (date(2027, 2, 28), 14),
        (date(2027, 3, 1), 15),
        (date(2030, 2, 28), 17),
        (date(2030, 3, 1), 18),
    ],
)
def test_leap_day_birthday(day: date, age: int) -> None:
    """Born 29 February: in common years the new age starts on 1 March, not 28 February."""
    assert Personnummer(make_test_number(date(2012, 2, 29), 990)).age_on(day) == age


def test_age_before_birth_is_an_error() -> None:
    """Asking the age on a day before birth is a caller's mistake, not age -1."""
    with pytest.raises(ValueError, match="before the birth date"):
        Personnummer(make_test_number(date(2012, 6, 15), 990)).age_on(date(2012, 6, 14))


def test_luhn_digit_of_a_published_example() -> None:
    """The textbook example 811228-9874 has check digit 4."""
    assert luhn_digit("811228987") == 4


@pytest.mark.parametrize("nine", ["81122898", "8112289870", "81122898x", "٨١١٢٢٨٩٨٧"])
def test_luhn_digit_needs_nine_ascii_digits(nine: str) -> None:
    """The check digit is only defined over exactly nine ASCII digits."""
    with pytest.raises(ValueError, match="nine ASCII digits"):
        luhn_digit(nine)


@pytest.mark.parametrize(
    ("eleven", "message"),
    [
        ("20230229981", "calendar date"),
        ("20261301981", "calendar date"),
        ("20120100981", "calendar date"),
        ("20120692981", "samordningsnummer"),
        ("20120660981", "calendar date"),
        ("20230289981", "samordningsnummer"),
        ("20261124981", "future"),
        ("20261184981", "future"),
    ],
)
def test_impossible_or_future_dates_are_rejected(eleven: str, message: str) -> None:
    """A Luhn-valid number must still state a real date of birth that is not after today."""
    with pytest.raises(InvalidPersonnummer, match=message):
        parse(with_check(eleven), today=TODAY)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "has 0 digits"),
        ("201206152", "has 9 digits"),
        ("20120615238", "has 11 digits"),
        ("2012061523890", "has 13 digits"),
        ("12061-52389", "right before the last four"),
        ("20120615-23890", "has 13 digits"),
        (" 201206152389", "only digits"),
        ("2012 06152389", "only digits"),
        ("201206152389\n", "only digits"),
        ("20120615_2389", "only digits"),
        ("２０１２０６１５２３８９", "only digits"),
        ("٢٠١٢٠٦١٥٢٣٨٩", "only digits"),
        ("201206-152389", "right before the last four"),
        ("2012061523-89", "right before the last four"),
        ("20120615--2389", "right before the last four"),
        ("120615-+2389", "right before the last four"),
        ("20120615+2389", "12-digit number states its century"),
    ],
)
def test_malformed_input_is_rejected(raw: str, message: str) -> None:
    """Wrong lengths, stray characters, non-ASCII digits and misplaced separators are refused."""
    with pytest.raises(InvalidPersonnummer, match=message):
        parse(raw, today=TODAY)


def test_messages_and_repr_do_not_repeat_the_number() -> None:
    """Errors and reprs end up in logs, so neither may contain the number itself."""
    twelve = make_test_number(date(2012, 6, 15), 983)
    wrong = twelve[:11] + str((int(twelve[11]) + 1) % 10)
    with pytest.raises(InvalidPersonnummer) as caught:
        parse(wrong, today=TODAY)
    assert wrong[2:8] not in str(caught.value)
    assert twelve[2:8] not in repr(parse(twelve, today=TODAY))


@pytest.mark.parametrize("digits", ["2012061523", "20120615-2389", "2012061598x1"])
def test_constructor_refuses_non_canonical_digits(digits: str) -> None:
    """A Personnummer built directly must already be in the 12-digit canonical form."""
    with pytest.raises(InvalidPersonnummer, match="12 ASCII digits"):
        Personnummer(digits)


def test_constructor_checks_luhn_and_date() -> None:
    """Building a Personnummer directly cannot bypass the check digit or the date check."""
    valid = make_test_number(date(2012, 6, 15), 983)
    with pytest.raises(InvalidPersonnummer, match="check digit"):
        Personnummer(valid[:11] + str((int(valid[11]) + 5) % 10))
    with pytest.raises(InvalidPersonnummer, match="calendar date"):
        Personnummer(with_check("20120231983"))
