"""Webhook URL rules, the signature format and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from broker.config import Environment
from broker.web.errors import InvalidInput
from consumers.webhooks.sender import retry_delay
from consumers.webhooks.service import check_url, sign


@pytest.mark.parametrize(
    "url",
    [
        "http://agency.example/hook",
        "https://127.0.0.1/hook",
        "https://localhost:8181/v1/data",
        "https://api.localhost/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/hook",
        "https://user:secret@agency.example/hook",
        "https:///hook",
        "https://agency.example/hook#part",
    ],
)
def test_production_refuses(url: str) -> None:
    """In production a webhook is https, to a host other than the broker's own machine, with
    no credentials or fragment in the URL."""
    with pytest.raises(InvalidInput) as caught:
        check_url(url, env="production")
    assert [e["pointer"] for e in caught.value.errors or []] == ["/url"]


@pytest.mark.parametrize("url", ["https://agency.example/samsyn", "https://10.20.30.40:8443/hook"])
def test_production_accepts_https_including_private_networks(url: str) -> None:
    """Agency systems on a municipality's private network are acceptable receivers."""
    assert check_url(url, env="production") == url


@pytest.mark.parametrize("env", ["development", "test"])
def test_local_environments_accept_plain_http_to_loopback(env: Environment) -> None:
    """Development and test push to receivers on the same machine over plain http."""
    url = "http://127.0.0.1:8099/hook"
    assert check_url(url, env=env) == url
    with pytest.raises(InvalidInput):
        check_url("ftp://127.0.0.1/hook", env=env)


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    """Samsyn-Signature is t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>."""
    body = b'{"delivery_id":"d"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, 1700000000) == f"t=1700000000,v1={expected}"


def test_retry_delay_doubles_within_bounds() -> None:
    """Retries wait min_s, then twice as long each time (up to 10% more), never past max_s,
    however many attempts have failed."""
    delays = [retry_delay(n, min_s=1, max_s=300) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        assert min(300, 2 ** (n - 1)) <= delay <= min(300, 1.1 * 2 ** (n - 1))
    assert retry_delay(10_000, min_s=1, max_s=300) == 300
