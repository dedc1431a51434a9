"""A real headless Chromium (Debian's, installed by ``deploy/local/browser.sh``), driven with
Playwright. A missing browser fails the run; it is never skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API runs an event loop of its own, which must be gone
    before pytest-asyncio's session loop runs the async tests."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run deploy/local/browser.sh"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
