"""Sample checks (stickprov): a reproducible random sample of one organisation's reads in one
month. The seed is recorded with the sample, so anyone can draw it again and get the same."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.audit.followup.models import ReviewSample
from broker.audit.followup.vocabulary import READS
from broker.audit.models import AuditRecord
from broker.web.errors import InvalidInput

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
SIZE_MAX = 50


def month_span(month: str) -> tuple[datetime, datetime]:
    """The month ``YYYY-MM`` as UTC instants [start, end); :class:`InvalidInput` otherwise."""
    found = MONTH.fullmatch(month)
    if not found:
        raise InvalidInput(f"/month: {month!r} is not a month (YYYY-MM)")
    year, number = int(found[1]), int(found[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def draw(population: Sequence[int], seed: str, size: int) -> list[int]:
    """``size`` of ``population`` (all when fewer), in seq order. ``random.Random`` seeded with a
    string hashes it with SHA-512, the same in every process and on every machine."""
    # Reproducible on purpose (the seed is published with the sample), not a secret.
    chosen = random.Random(seed).sample(  # noqa: S311
        sorted(population), min(size, len(population))
    )
    return sorted(chosen)


async def population(session: AsyncSession, org: str, month: str) -> list[int]:
    """The seqs of the organisation's reads in the month."""
    start, end = month_span(month)
    q = select(AuditRecord.seq).where(
        AuditRecord.actor_org == org,
        AuditRecord.action.in_(READS),
        AuditRecord.time >= start,
        AuditRecord.time < end,
    )
    return list((await session.execute(q.order_by(AuditRecord.seq))).scalars())


def sample_reasons(org: str, month: str, seed: str, population: int, reads: list[int]) -> list[str]:
    """The ``reasons`` of a ``review.sample`` record (the sealer stores the sample from them)."""
    return [
        f"org:{org}",
        f"month:{month}",
        f"seed:{seed}",
        f"population:{population}",
        "reads:" + ",".join(str(s) for s in reads),
    ]


async def recent(session: AsyncSession, org: str, limit: int = 100) -> list[ReviewSample]:
    q = select(ReviewSample).order_by(ReviewSample.drawn_at.desc()).limit(limit)
    if org:
        q = q.where(ReviewSample.org == org)
    return list((await session.execute(q)).scalars())


async def sampled_reads(session: AsyncSession, sample: ReviewSample) -> list[AuditRecord]:
    seqs = [int(s) for s in sample.read_seqs]
    q = select(AuditRecord).where(AuditRecord.seq.in_(seqs)).order_by(AuditRecord.seq)
    return list((await session.execute(q)).scalars())
