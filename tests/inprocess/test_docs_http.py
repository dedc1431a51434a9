"""/docs and /redoc over HTTP (their rendering is tests/e2e/test_docs.py), and HEAD wherever GET
answers."""

from __future__ import annotations

from tests.kit import Samsyn


def test_docs_pages_carry_a_policy_and_load_only_local_assets(samsyn: Samsyn) -> None:
    for path in ("/docs", "/redoc"):
        r = samsyn.call("GET", path)
        assert r.status_code == 200
        policy = r.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "frame-ancestors 'none'" in policy
        assert "http" not in r.text.replace(samsyn.url, "")  # no absolute URL elsewhere
        assert "<script>" not in r.text  # no inline script: script-src 'self' holds
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        r = samsyn.call("GET", f"/docs/assets/{asset}")
        assert r.status_code == 200
        assert len(r.content) > 100_000
    assert b"cdn.redoc.ly" not in samsyn.call("GET", "/docs/assets/redoc.standalone.js").content
    assert samsyn.call("GET", "/docs/assets/../../config.py").status_code == 404


def test_head_answers_wherever_get_does(samsyn: Samsyn) -> None:
    """HEAD has GET's status and headers and no body; a path without GET still says which
    methods it has."""
    reader = samsyn.org("student_health", "1460")
    for path, token in (
        ("/docs", None),
        ("/docs/assets/swagger-ui.css", None),
        ("/openapi.json", None),
        ("/healthz", None),
        ("/v1/feed", reader.token),
    ):
        get = samsyn.call("GET", path, token)
        head = samsyn.call("HEAD", path, token)
        assert (path, head.status_code) == (path, get.status_code == 200 and 200)
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    r = samsyn.call("HEAD", "/v1/feed")
    assert r.status_code == 401
    r = samsyn.call("HEAD", "/oauth/token")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    r = samsyn.call("DELETE", "/v1/feed", reader.token)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
