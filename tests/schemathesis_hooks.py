"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.schemathesis_hooks``): strategies for the
OpenAPI document's custom string formats, which no pattern can state. ``personnummer``: a
Luhn-valid, real date of birth, fictional serial 980–999; ``cursor``: a cursor the API gives
out (it is opaque to clients)."""

from __future__ import annotations

from datetime import date

import schemathesis
from hypothesis import strategies as st

from broker.web.cursors import encode_cursor
from tests.kit import luhn_check


@st.composite
def personnummer(draw: st.DrawFn) -> str:
    born = draw(st.dates(min_value=date(2008, 1, 1), max_value=date(2025, 12, 31)))
    nine = born.strftime("%y%m%d") + str(draw(st.integers(980, 999)))
    return born.strftime("%Y") + nine[2:] + str(luhn_check(nine))


schemathesis.openapi.format("personnummer", personnummer())
schemathesis.openapi.format("cursor", st.integers(0, 2**40).map(encode_cursor))
