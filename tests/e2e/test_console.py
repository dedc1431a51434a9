"""The auditors' console in a real browser against a real Samsyn on the real stack."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid

import pytest
from playwright.sync_api import Browser, expect

from broker.audit.service import RECORD_FIELDS
from tests.e2e.console import ARTIFACTS, create_auditor
from tests.support import Samsyn, audit_for, shared_and_read

pytestmark = pytest.mark.e2e
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_auditor_searches_opens_verifies_and_exports(samsyn: Samsyn, browser: Browser) -> None:
    """An auditor made with the CLI logs in, finds a child's delivery and read by personnummer,
    opens a record with its hashes and reasons, verifies the chain (OK), exports the search as
    CSV, and every one of those steps is itself in the audit trail under the auditor's name;
    after logging out the console asks for a login again."""
    shared = shared_and_read(samsyn, "1462")
    audit_for(samsyn, shared.event_id, 1, action="feed.read")
    name = f"granskare-{uuid.uuid4().hex[:6]}"
    password = create_auditor(samsyn, name)

    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{samsyn.url}/audit/")
    expect(page).to_have_url(f"{samsyn.url}/audit/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", "wrong")
    page.click("#login")
    expect(page.locator(".alert")).to_contain_text("Wrong name or password")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("#login")
    expect(page).to_have_url(f"{samsyn.url}/audit/")
    expect(page.locator(".who")).to_contain_text(name)
    expect(page.locator("h1")).to_contain_text("Översikt")

    page.click("#nav-search")
    page.fill("input[name=subject]", shared.barn)
    page.click("#search")
    rows = page.locator("tbody tr")
    expect(rows.filter(has_text="feed.read")).to_have_count(1)
    expect(rows.filter(has_text="decision")).to_have_count(2)
    denial = rows.filter(has_text="decision").filter(has_text=shared.polis.id)
    expect(denial).to_contain_text("deny")
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

    denial.locator("a.record").click()
    expect(page.locator("h1")).to_contain_text("Record")
    expect(page.locator("#field-outcome")).to_have_text("deny")
    expect(page.locator("#field-event_id")).to_have_text(shared.event_id)
    expect(page.locator("#field-reasons li").first).not_to_be_empty()
    expect(page.locator("#field-hash")).to_have_text(HEX64)
    expect(page.locator("#field-prev_hash")).to_have_text(HEX64)
    expect(page.locator("#field-policy_revision")).not_to_have_text("–")
    page.screenshot(path=str(ARTIFACTS / "console-record.png"), full_page=True)
    page.click("text=Tillbaka")
    expect(page.locator("input[name=subject]")).to_have_value(shared.barn)

    page.click("#verify")
    expect(page.locator("#verdict")).to_contain_text("OK")
    page.screenshot(path=str(ARTIFACTS / "console-verify.png"), full_page=True)
    page.go_back()

    with page.expect_download() as download:
        page.click("#export")
    path = download.value.path()
    table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert tuple(table[0]) == RECORD_FIELDS
    events = [dict(zip(RECORD_FIELDS, row, strict=True)) for row in table[1:]]
    assert {(e["action"], e["recipient_org"]) for e in events} >= {
        ("decision", shared.eh.id),
        ("decision", shared.polis.id),
        ("feed.read", shared.eh.id),
    }
    pseudonym = events[0]["subject_pseudonym"]

    me = f"local:{name}"
    for action in ("admin.audit.login", "admin.audit.search", "admin.audit.verify"):
        audit_for(samsyn, None, 1, action=action, actor_client=me)
    audit_for(samsyn, shared.event_id, 1, action="admin.audit.view", actor_client=me)
    (exported,) = audit_for(samsyn, None, 1, action="admin.audit.export", actor_client=me)
    assert exported["subject_pseudonym"] == pseudonym
    assert exported["actor_org"] == "samsyn-tillsyn"
    assert shared.barn not in json.dumps(exported)

    page.click("text=Logga ut")
    expect(page).to_have_url(f"{samsyn.url}/audit/login")
    page.goto(f"{samsyn.url}/audit/export.csv?subject={shared.barn}")
    expect(page).to_have_url(f"{samsyn.url}/audit/login")
    context.close()
