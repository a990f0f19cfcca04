"""The demo owner in a real browser against `orbin up`: signs in, watches a new run appear
without reloading, opens it and reads its steps."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Browser
from tests.support.services import Platform

pytestmark = pytest.mark.e2e

DEMO_EMAIL = "demo@orbin.local"


def sign_in(page: Page, platform: Platform, password: str) -> None:
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", password)
    page.click("button[type=submit]")


def test_demo_owner_sees_a_new_run_live_and_debugs_it(
    platform_sqlite: Platform, browser: Browser, tmp_path: Path
) -> None:
    p = platform_sqlite
    assert p.demo_password, "orbin up prints the demo owner's password on first start"
    page = browser.context.new_page()

    # Nothing before signing in: the dashboard sends visitors to the sign-in page.
    page.goto(p.dashboard_url + "/")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    sign_in(page, p, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    sign_in(page, p, p.demo_password)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.get_by_text("Runs, last 24 h")).to_be_visible()
    page.evaluate("window.__notReloaded = true")

    # An event through the API: its run appears in the open page, without a reload.
    name = f"E2E {uuid.uuid4().hex[:6]}"
    resp = httpx.post(
        f"{p.api_url}/v1/events",
        headers={"x-api-key": p.demo_key},
        json={"type": "demo.hello", "data": {"name": name}},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["runIds"][0]
    row = page.locator(f'table.orbin-runs tr[data-run-id="{run_id}"]')
    expect(row).to_have_count(1)
    assert page.evaluate("window.__notReloaded === true"), "the page reloaded"
    expect(page.locator("table.orbin-runs tbody tr").first).to_have_attribute(
        "data-run-id", run_id
    )  # newest first
    expect(row.locator("td").nth(1)).to_have_text("Hello")  # the workflow's name, not its id
    expect(row.locator(".orbin-badge")).to_have_attribute(
        "data-status", re.compile("pending|running|completed")
    )
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)

    # Open it from the table: the debugger shows the run, its steps done, a step's output.
    row.locator("td").nth(1).click()
    expect(page).to_have_url(re.compile(rf"/run\?id={run_id}$"))
    expect(page.get_by_text("← All runs")).to_be_visible()
    expect(page.locator("h3", has_text=run_id)).to_be_visible()
    badge = page.locator('h3 .orbin-badge[data-status="completed"]')
    expect(badge).to_be_visible(timeout=30_000)  # live refresh until the run completes
    steps = page.get_by_role("radiogroup")
    expect(steps.get_by_text(re.compile(r"^Greet · ✓ Completed · attempt 1/\d"))).to_be_visible()
    expect(
        steps.get_by_text(re.compile(r"^Summarize · ✓ Completed · attempt 1/\d"))
    ).to_be_visible()
    expect(page.locator("[data-testid=stJson]").first).to_contain_text(f"Hello {name}!")
    steps.get_by_text(re.compile(r"^Greet")).click()
    expect(page.locator("h4", has_text="Greet")).to_be_visible()
    expect(page.locator("[data-testid=stJson]").first).to_contain_text(f"Hello {name}!")
    expect(page.locator(".js-plotly-plot")).to_be_visible()  # the timeline
    expect(page.locator("[data-testid=stException]")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "run-detail.png"), full_page=True)

    # Signing out ends the session: the dashboard is behind the sign-in page again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("alert")).to_have_text("You signed out.")
    page.goto(p.dashboard_url + f"/run?id={run_id}")
    expect(page).to_have_url(re.compile(r"/signin\?next="))

    assert browser.hosts() == {"127.0.0.1"}, f"requests left the machine: {browser.hosts()}"
