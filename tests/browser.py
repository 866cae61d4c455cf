"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright.

Playwright's own browser download is never used (``executable_path`` points at the system's
Chromium). Without a Chromium the tests are skipped with what to install — except where
``MTREC_REQUIRE_BROWSER`` is set (CI sets it), where a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, Route, sync_playwright

REQUIRE_ENV = "MTREC_REQUIRE_BROWSER"
CHROMIUM_ENV = "MTREC_CHROMIUM"


def chromium_path() -> str:
    """The system Chromium (``$MTREC_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH)."""
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = (
            "no Chromium for the browser tests: install Debian's `chromium` (`sudo apt install chromium`) "
            f"or point {CHROMIUM_ENV} at a Chromium binary"
        )
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(message)
        pytest.skip(message)
    return found


@dataclass
class Browsing:
    """A page, plus what it logged as errors and which requests left the machine (blocked)."""

    page: Page
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


@contextmanager
def browser_page(allow_localhost: bool = False) -> Iterator[Browsing]:
    """A headless Chromium page that records console errors and blocks (and records) every request
    that is not a local file (or, with ``allow_localhost``, a local server)."""
    local = ("file://", "http://localhost", "http://127.0.0.1") if allow_localhost else ("file://",)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        browsing = Browsing(page)

        def route(request: Route) -> None:
            if request.request.url.startswith(local):
                request.continue_()
            else:
                browsing.external.append(request.request.url)
                request.abort()

        page.route("**/*", route)
        page.on(
            "console",
            lambda message: browsing.errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: browsing.errors.append(str(error)))
        try:
            yield browsing
        finally:
            browser.close()
