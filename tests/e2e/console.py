"""Helpers of the console's browser tests: an auditor made with the CLI, a logged-in page, and
where screenshots are kept."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from playwright.sync_api import Browser, Page, expect

from tests.support import REPO, Samsyn

ARTIFACTS = REPO / "var" / "test-artifacts"
ARTIFACTS.mkdir(parents=True, exist_ok=True)


def create_auditor(samsyn: Samsyn, name: str) -> str:
    """``samsyn auditor create NAME`` against the server's database; the password it prints."""
    out = subprocess.run(
        [sys.executable, "-m", "broker.cli", "auditor", "create", name],
        env=samsyn.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    created = json.loads(out.stdout)
    assert created["auditor"] == name
    return str(created["password"])


def logged_in(samsyn: Samsyn, browser: Browser) -> tuple[Page, str]:
    """A page of a new auditor's console session, on the overview; and the auditor's name."""
    name = f"granskare-{uuid.uuid4().hex[:6]}"
    password = create_auditor(samsyn, name)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{samsyn.url}/audit/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("#login")
    expect(page).to_have_url(f"{samsyn.url}/audit/")
    return page, name
