"""Log follow-up in a real browser against a real Samsyn on the real stack: the overview with
its charts, reviewing an emergency access, drawing and completing a sample, and a flagged
unusual pattern. Screenshots are kept in var/test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.console import ARTIFACTS, logged_in
from tests.kit import Samsyn, audit_for, child, shared_and_read

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
    # Unfiltered the chart draws the busiest organisations of everything the session shared, which
    # need not include this test's; it must be there once the page is filtered to it (below).
    expect(page.locator("#chart-org svg rect.bar").first).to_be_visible()
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


def test_reviewing_an_emergency_access(samsyn: Samsyn, browser: Browser) -> None:
    """An emergency access is an open item of the review queue; the auditor's verdict with a
    note is a review.verdict record in the chain, and the item then shows who reviewed it and
    when, is gone from the open items, and is in the period's printable report."""
    barn = child(9)
    vc, soc = samsyn.org("health"), samsyn.org("social_services", "1481")
    vc.relate(barn, "listed")
    soc.relate(barn, "case_open")
    contact = vc.envelope(
        barn,
        "health.contact",
        {"service": "bup", "reason_area": "trygghet", "diagnosis_codes": ["F43.1"]},
        purpose="early_support",
        basis="care_support_u18",
    )
    vc.publish(contact)
    reason = "Barnet är i akut fara enligt polisen."
    r = soc.call("POST", f"/v1/children/{barn}/emergency-access", json={"reason": reason})
    assert r.status_code == 200, r.text
    (access,) = audit_for(samsyn, contact["id"], 1, action="emergency_access")
    assert "obligation:review" in access["reasons"]
    page, name = logged_in(samsyn, browser)

    page.click("#nav-review")
    page.fill("input[name=org]", soc.id)
    page.click("#apply")
    row = page.locator(f"#item-{access['seq']}")
    expect(row).to_contain_text("Öppen")
    page.screenshot(path=str(ARTIFACTS / "followup-review-queue.png"), full_page=True)
    row.locator("a.item").click()
    expect(page.locator("#item-state")).to_contain_text("Öppen")
    expect(page.locator("main")).to_contain_text(f"reason:{reason}")
    # A verdict that is not one, or one without a note, is refused with problem+json.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    for form in ({"verdict": "maybe", "note": "?"}, {"verdict": "justified", "note": " "}):
        refused = page.request.post(page.url, form={"csrf": csrf, **form})
        assert refused.status == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
    page.check("#verdict-justified")
    page.fill("textarea[name=note]", "Akut fara; nödöppningen var befogad.")
    page.click("#record-verdict")

    expect(page.locator("#verdict-value")).to_contain_text("Justified", timeout=30_000)
    expect(page.locator("#item-state")).to_contain_text("Granskad")
    expect(page.locator("#verdict-by")).to_have_text(f"local:{name}")
    expect(page.locator("#verdict-note")).to_have_text("Akut fara; nödöppningen var befogad.")
    page.screenshot(path=str(ARTIFACTS / "followup-review-verdict.png"), full_page=True)
    # Exactly one verdict: the refused ones wrote nothing.
    (verdict,) = audit_for(samsyn, contact["id"], 1, action="review.verdict")
    assert verdict["actor_client"] == f"local:{name}"
    assert verdict["reasons"][:2] == [f"item:{access['seq']}", "verdict:justified"]
    page.click("#verdict-record")
    expect(page.locator("#field-action")).to_have_text("review.verdict")
    expect(page.locator("#field-hash")).to_have_text(verdict["hash"])

    page.goto(f"{samsyn.url}/audit/review?show=open&org={soc.id}")
    expect(page.locator("#empty")).to_be_visible()
    page.goto(f"{samsyn.url}/audit/review?show=all&org={soc.id}")
    expect(page.locator(f"#item-{access['seq']}")).to_contain_text(f"local:{name}")

    # The printable report of the period names the verdict, the note and the reviewer.
    page.click("#nav-report")
    page.fill("input[name=org]", soc.id)
    page.click("#apply")
    reviewed = page.locator("#report-reviewed tbody tr")
    expect(reviewed).to_have_count(1)
    expect(reviewed).to_contain_text("Justified")
    expect(reviewed).to_contain_text("Akut fara; nödöppningen var befogad.")
    expect(reviewed).to_contain_text(f"local:{name}")
    expect(page.locator("#report-reviewers")).to_contain_text(f"local:{name}: 1")
    page.emulate_media(media="print")
    expect(page.locator("nav.pages")).to_be_hidden()
    expect(page.locator(".filters")).to_be_hidden()
    page.screenshot(path=str(ARTIFACTS / "followup-report.png"), full_page=True)
    page.pdf(path=str(ARTIFACTS / "followup-report.pdf"))
    page.context.close()


def test_drawing_and_completing_a_sample(samsyn: Samsyn, browser: Browser) -> None:
    """An organisation's reads of the month are sampled with a chosen seed (recorded in the
    chain); the auditor looks at the sampled reads and records the sample's result."""
    shared = shared_and_read(samsyn, "1482")
    shared.eh.feed()
    reads = audit_for(samsyn, shared.event_id, 2, action="feed.read")
    page, name = logged_in(samsyn, browser)

    page.click("#nav-samples")
    page.fill("input[name=org]", shared.eh.id)
    page.fill("input[name=size]", "5")
    page.fill("input[name=seed]", "loggkontroll-e2e")
    page.click("#draw")
    expect(page.locator("#sample-seed")).to_have_text("loggkontroll-e2e", timeout=30_000)
    expect(page.locator("#sample-size")).to_contain_text("2 av 2")
    expect(page.locator("#sampled tbody tr")).to_have_count(2)
    for read in reads:
        expect(page.locator("#sampled")).to_contain_text(str(read["seq"]))
    page.check("#verdict-follow_up")
    page.fill("textarea[name=note]", "Två läsningar samma dag; fråga enheten varför.")
    page.click("#record-verdict")
    expect(page.locator("#verdict-value")).to_contain_text("Needs follow-up", timeout=30_000)
    expect(page.locator("#sample-state")).to_contain_text("Granskat")
    page.screenshot(path=str(ARTIFACTS / "followup-sample.png"), full_page=True)

    (drawn,) = audit_for(samsyn, None, 1, action="review.sample", recipient_org=shared.eh.id)
    assert "seed:loggkontroll-e2e" in drawn["reasons"]
    assert drawn["actor_client"] == f"local:{name}"
    page.click("#nav-samples")
    expect(page.locator("#samples")).to_contain_text("Needs follow-up")
    page.context.close()


def test_repeated_refusals_are_flagged(samsyn: Samsyn, browser: Browser) -> None:
    """A school tries emergency access (not open to its kind) three times in a day: the flags
    page names it with an explanation and links to the refused records; a school that tried
    once is not flagged."""
    barn = child(10)
    skola, other = samsyn.org("school", "1483"), samsyn.org("school", "1483")
    for org, times in ((skola, 3), (other, 1)):
        for _ in range(times):
            r = org.call(
                "POST", f"/v1/children/{barn}/emergency-access", json={"reason": "Oro för barnet."}
            )
            assert r.status_code == 403, r.text
    audit_for(samsyn, None, 3, action="emergency_access", actor_org=skola.id, outcome="refused")
    audit_for(samsyn, None, 1, action="emergency_access", actor_org=other.id, outcome="refused")
    page, _ = logged_in(samsyn, browser)

    page.click("#nav-flags")
    flag = page.locator(f"#flag-refused-{skola.id}")
    expect(flag).to_contain_text("3 refused attempts")
    expect(flag).to_contain_text("Upprepade avvisade försök")
    expect(page.locator(f"#flag-refused-{other.id}")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "followup-flags.png"), full_page=True)
    flag.locator("a").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="refused")).to_have_count(3)
    page.context.close()
