"""A personnummer from a request, or a 422 that says what is wrong with it."""

from __future__ import annotations

from broker.subjects.personnummer import InvalidPersonnummer, Personnummer, parse
from broker.web.errors import InvalidInput


def subject_of(raw: object, *, pointer: str) -> Personnummer:
    if not isinstance(raw, str):
        raise InvalidInput(
            f"{pointer}: a personnummer is a string",
            errors=[{"pointer": pointer, "detail": "expected a string"}],
        )
    try:
        return parse(raw)
    except InvalidPersonnummer as err:
        raise InvalidInput(
            f"{pointer}: {err}", errors=[{"pointer": pointer, "detail": str(err)}]
        ) from err
