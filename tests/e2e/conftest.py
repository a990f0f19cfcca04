"""The dashboard in Debian's headless Chromium (never a downloaded browser), against the real
platform (`platform_sqlite` from tests/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[object]:
    # Not session-scoped: sync Playwright keeps an event loop running in this thread while it
    # is open, and every later asyncio.run() or async test of the session would then fail.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (tests/run.sh does)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # two busy cores: generous, never a fixed sleep
    with sync_playwright() as p:
        yield p


class Browser:
    """One persistent Chromium profile, recording every request the pages make."""

    def __init__(self, driver, profile: Path) -> None:
        self.context = driver.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        self.context.set_default_timeout(30_000)
        self.requests: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))

    def hosts(self) -> set[str]:
        # data:, blob: and about: URLs never leave the browser (blob: holds component scripts).
        local = ("data:", "blob:", "about:")
        return {urlsplit(u).hostname or "" for u in self.requests if not u.startswith(local)}


@pytest.fixture
def browser(playwright_driver, tmp_path: Path) -> Iterator[Browser]:
    b = Browser(playwright_driver, tmp_path / "chromium-profile")
    try:
        yield b
    finally:
        b.context.close()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
