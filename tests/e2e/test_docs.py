"""The API documentation in a real browser: rendered from the broker alone, as on a municipal
network that blocks the internet."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Request, expect

from tests.kit import REPO, Samsyn

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "var" / "test-artifacts"


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/docs", "#swagger-ui .opblock-summary-path"),
        ("/redoc", "[data-section-id^='operation/']"),
    ],
)
def test_docs_render_with_nothing_from_elsewhere(
    samsyn: Samsyn, browser: Browser, path: str, operation: str
) -> None:
    """Swagger UI and ReDoc show the operations, every request the page makes goes to the
    broker, and the content security policy refuses nothing the page needs."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    broker = urlsplit(samsyn.url).netloc
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    requested: list[str] = []
    refused: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if isinstance(r, Request) else None)

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or "Refused to" in msg.text:
            refused.append(msg.text)

    page.on("console", on_console)
    page.goto(samsyn.url + path)
    expect(page.locator(operation).first).to_be_visible(timeout=30_000)
    assert page.locator(operation).count() >= 15
    expect(page.get_by_text("/v1/events").first).to_be_attached()
    page.screenshot(path=str(ARTIFACTS / f"{path.strip('/')}.png"))
    context.close()

    elsewhere = [
        u
        for u in requested
        if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != broker
    ]
    assert requested
    assert not elsewhere, elsewhere
    assert not refused, refused
