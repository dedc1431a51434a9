"""The auditors' console (``/audit/``): every page's router, one module per concern."""

from __future__ import annotations

from fastapi import APIRouter

from broker.audit.console import (
    cooperation,
    flags,
    login,
    overview,
    report,
    review,
    samples,
    search,
)

router = APIRouter(prefix="/audit", include_in_schema=False)
for part in (login, overview, review, samples, flags, report, cooperation, search):
    router.include_router(part.router)
