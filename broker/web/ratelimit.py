"""Per-client token buckets for ``/oauth/token`` and ``/v1/events`` (429 with Retry-After).

Buckets live in the process: with N API replicas a client may reach N times the rate, which is
the right order of magnitude for stopping a runaway integration or a secret-guessing loop; a
shared limiter (the ingress's) is the place for exact global limits.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from broker.web.errors import TooManyRequests

MAX_TRACKED = 100_000


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    rate_per_s: float
    burst: float
    _buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, key: str, now: float | None = None, cost: int = 1) -> None:
        """Spend ``cost`` tokens of ``key``'s bucket (one per event of a batch) or raise
        :class:`TooManyRequests` and spend none."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._buckets.clear()  # bounded memory under a flood of distinct keys
            bucket = self._buckets[key] = Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate_per_s)
        bucket.updated = now
        if bucket.tokens < cost:
            wait = math.ceil((cost - bucket.tokens) / self.rate_per_s)
            raise TooManyRequests(
                f"rate limit: at most {self.rate_per_s:g}/s per client, bursts of {self.burst:g}",
                headers={"Retry-After": str(wait)},
            )
        bucket.tokens -= cost
