"""Fictional children: Luhn-valid numbers with serials 98x, a range no real person has."""

from __future__ import annotations

import random
from datetime import date, timedelta


def luhn_check(nine: str) -> int:
    total = 0
    for i, ch in enumerate(nine):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


_ISSUED: set[str] = set()


def child(age: int) -> str:
    """A fictional child's number (serial 98x: a range no real person has) of the given age,
    never one issued before in this session: a test's "unknown child" must be unknown (the
    range holds only ~2,700 numbers per age, so random picks did meet)."""
    today = date.today()
    while True:
        born = today.replace(year=today.year - age) - timedelta(days=random.randint(30, 300))
        nine = born.strftime("%y%m%d") + f"98{random.randint(0, 9)}"
        number = born.strftime("%Y%m%d") + nine[6:] + str(luhn_check(nine))
        if number not in _ISSUED:
            _ISSUED.add(number)
            return number
