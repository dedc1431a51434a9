"""The cooperation's follow-up page in a real browser, over the demo's year of activity."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Request, expect

from broker.demo.seed import seed
from broker.demo.year import STEERING_GROUP, last_whole_school_year, seed_year
from broker.followup.catalogue import school_year
from tests.e2e.console import ARTIFACTS, create_auditor
from tests.kit import Samsyn, audit_for

pytestmark = pytest.mark.e2e
MUNICIPALITIES = ("Bengtsfors", "Dals-Ed", "Färgelanda", "Mellerud", "Åmål")


def counted(samsyn: Samsyn, token: str) -> tuple[str, int]:
    """The seeded school year and its concerns in all, once the follow-up has stopped
    counting (the same total twice, three seconds apart)."""
    year = school_year(last_whole_school_year(datetime.now(UTC))[0].date())
    last: Any = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        r = samsyn.call("GET", "/v1/followup/tables/concerns", token, params={"year": year})
        (total,) = [
            c["count"]
            for c in r.json()["cells"]
            if (c["period"], c["municipality"], c["dim"]) == (year, "all", "*")
        ]
        if total == last and total != "<5":
            return year, int(total)
        last = total
        time.sleep(3)
    raise AssertionError("the follow-up did not settle")


def test_the_steering_groups_page_and_quarterly_report(
    samsyn: Samsyn, browser: Browser, tmp_path: Path
) -> None:
    """After a year of Dalsland activity through the API, an auditor opens the follow-up: a
    heatmap of concerns by area and month for the cooperation and each municipality, "<5" where
    cells are withheld, children reached and time to first support as inline SVG; the page asks
    nothing of any other origin. The quarterly report prints one row per municipality. Both
    views are in the audit trail."""
    clients = seed(samsyn.url, (samsyn.admin_id, samsyn.admin_secret), tmp_path / "c.json")
    assert seed_year(samsyn.url, clients) > 300
    lead = clients[STEERING_GROUP]
    year, concerns = counted(samsyn, samsyn.token(lead["client_id"], lead["client_secret"]))
    assert concerns >= 50

    name = f"styrgrupp-{uuid.uuid4().hex[:6]}"
    password = create_auditor(samsyn, name)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    elsewhere: list[str] = []

    def note(request: Request) -> None:
        if not request.url.startswith(samsyn.url):
            elsewhere.append(request.url)

    page.on("request", note)
    page.goto(f"{samsyn.url}/audit/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("#login")
    page.click("#nav-cooperation")
    expect(page.locator("h1")).to_contain_text("Samverkansuppföljning")
    # The seeded year by name: without one the page shows the latest year with concerns, and
    # other tests of this session's Samsyn add concerns to the current one.
    page.goto(f"{samsyn.url}/audit/cooperation/?year={year}")
    expect(page.locator("h1")).to_contain_text(year)
    heatmaps = page.locator("#heatmaps figure")
    expect(heatmaps.last.locator("figcaption")).to_contain_text("Hela samverkan")
    for municipality in MUNICIPALITIES:
        expect(heatmaps.filter(has_text=municipality)).to_have_count(1)
    expect(heatmaps.last.locator("svg rect")).to_have_count(8 * 4)  # areas by quarter
    expect(page.locator("#by-month svg")).to_contain_text("Åmål")
    expect(page.locator("#by-month svg text", has_text="<5").first).to_be_visible()
    expect(page.locator("#reached svg")).to_be_visible()
    expect(page.locator("#spread svg")).to_contain_text("Åmål")
    expect(page.locator("#sharing tbody tr", has_text="Mellerud")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "cooperation.png"), full_page=True)

    # Sharing is counted when it is decided: the demo's decisions and consents were made today.
    page.goto(f"{samsyn.url}/audit/cooperation/?year={school_year(datetime.now(UTC).date())}")
    decisions = page.locator("#sharing tbody tr", has_text="Hela samverkan").locator("td").nth(1)
    expect(decisions).not_to_have_text("<5")
    page.screenshot(path=str(ARTIFACTS / "cooperation-sharing.png"), full_page=True)
    page.go_back()

    quarter = page.locator(".quarters a").nth(2)  # the school year's third quarter: Jan-Mar
    quarter_id = quarter.inner_text()
    quarter.click()
    expect(page.locator("h1")).to_contain_text(quarter_id)
    for municipality in MUNICIPALITIES:
        expect(page.locator("#activity tbody tr", has_text=municipality)).to_have_count(1)
    expect(page.locator("#activity tbody tr").last).to_contain_text("Hela samverkan")
    page.emulate_media(media="print")
    expect(page.locator("header")).to_be_hidden()
    expect(page.locator("nav.pages")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "cooperation-report.png"), full_page=True)
    assert elsewhere == []
    context.close()

    me = f"local:{name}"
    views = audit_for(samsyn, None, 2, action="followup.read", actor_client=me)
    assert ["table:console", f"school_year:{year}"] in [v["reasons"] for v in views]
    assert [f"table:report:{quarter_id}", f"school_year:{year}"] in [v["reasons"] for v in views]
