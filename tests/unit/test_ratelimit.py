"""The per-client token bucket: bursts pass, the excess gets 429 with Retry-After, time refills."""

from __future__ import annotations

import pytest

from broker.web.errors import TooManyRequests
from broker.web.ratelimit import RateLimiter


def test_burst_then_refusal_with_retry_after() -> None:
    """A client may spend its burst at once; the next call is refused and told when to retry."""
    limiter = RateLimiter(rate_per_s=0.5, burst=3)
    for _ in range(3):
        limiter.take("c1", now=100.0)
    with pytest.raises(TooManyRequests) as refused:
        limiter.take("c1", now=100.0)
    assert refused.value.status == 429
    assert refused.value.headers == {"Retry-After": "2"}


def test_clients_do_not_share_buckets_and_time_refills() -> None:
    """One client's exhaustion leaves another's bucket whole; waiting refills tokens."""
    limiter = RateLimiter(rate_per_s=1, burst=1)
    limiter.take("a", now=0.0)
    limiter.take("b", now=0.0)
    with pytest.raises(TooManyRequests):
        limiter.take("a", now=0.5)
    limiter.take("a", now=1.6)
