"""Log follow-up in a real browser against a real Samsyn on the real stack: the overview with
its charts, reviewing an emergency access, drawing and completing a sample, and a flagged
unusual pattern. Screenshots are kept in var/test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.console import ARTIFACTS, logged_in
from tests.support import Samsyn, audit_for, shared_and_read

pytestmark = pytest.mark.e2e


def test_overview_counts_and_charts_the_period(samsyn: Samsyn, browser: Browser) -> None:
    """The first page after login is the overview of the last 30 days: disclosures, denials and
    reads are counted, drawn per day and per organisation as inline SVG, and the chain's last
    checkpoint is checked; filtered to one organisation it counts only what that one did."""
    shared = shared_and_read(samsyn, "1480")
    audit_for(samsyn, shared.event_id, 1, action="feed.read")
    page, _ = logged_in(samsyn, browser)

    expect(page.locator("h1")).to_contain_text("Översikt")
    for stat in ("allowed", "denied", "reads"):
        assert int(page.locator(f"#stat-{stat} b").inner_text()) >= 1
    expect(page.locator("#chart-day svg rect.bar.reads").first).to_be_visible()
    expect(page.locator("#chart-org svg")).to_contain_text(shared.eh.id)
    expect(page.locator("#chain-state")).to_contain_text("OK", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "followup-overview.png"), full_page=True)

    page.fill("input[name=org]", shared.eh.id)
    page.click("#apply")
    expect(page.locator("#stat-reads b")).to_have_text("1")
    expect(page.locator("#stat-allowed b")).to_have_text("1")
    expect(page.locator("#stat-denied b")).to_have_text("0")
    expect(page.locator("#chart-org svg text", has_text=shared.eh.id)).to_have_count(1)
    expect(page.locator("#chart-org svg")).not_to_contain_text(shared.polis.id)
    expect(page.locator("#grounds")).to_contain_text("consent")
    page.context.close()
