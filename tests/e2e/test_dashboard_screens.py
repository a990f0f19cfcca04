"""Every screen of the dashboard in headless Chromium against `orbin up`: each renders without an
error; a workflow is written in the editor, validated, saved, activated and test-run with its
result shown inline; a failed run is inspected, replayed, resumed and compared; an API key is
created, rotated and revoked; the audit log is exported. Screenshots go to the test's folder."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Browser
from tests.support.services import Platform

pytestmark = pytest.mark.e2e

DEMO_EMAIL = "demo@orbin.local"
SCREENS = [  # path, the page's heading
    ("/", "Overview"),
    ("/workflows", "Workflows"),
    ("/editor", "New workflow"),
    ("/runs", "Runs"),
    ("/events", "Events"),
    ("/integrations", "Integrations"),
    ("/api-keys", "API keys"),
    ("/settings", "Settings"),
    ("/members", "Members"),
    ("/billing", "Billing"),
    ("/audit", "Audit log"),
    ("/account", "Account"),
]


def signed_in(browser: Browser, p: Platform) -> Page:
    page = browser.context.new_page()
    page.goto(p.dashboard_url + "/")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", p.demo_password)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    return page


def no_error(page: Page) -> None:
    expect(page.locator("[data-testid=stException]")).to_have_count(0)


def api(p: Platform, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    headers = {"x-api-key": key or p.demo_key}
    return httpx.request(method, p.api_url + path, headers=headers, timeout=30, **kw)


def test_every_screen_renders_without_error(
    platform_sqlite: Platform, browser: Browser, tmp_path: Path
) -> None:
    p = platform_sqlite
    page = signed_in(browser, p)
    for path, heading in SCREENS:
        page.goto(p.dashboard_url + path)
        expect(page.locator("h1", has_text=heading)).to_be_visible()
        no_error(page)
        page.screenshot(path=str(tmp_path / f"{path.strip('/') or 'overview'}.png"), full_page=True)
    page.goto(p.dashboard_url + "/")
    expect(page.get_by_text("executions this period")).to_be_visible()
    expect(page.get_by_text("Success rate")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_be_visible()  # executions per day

    # The quick-jump palette: Ctrl+K, a few letters, Enter.
    page.keyboard.press("Control+K")
    page.get_by_role("textbox", name="Quick jump").fill("bill")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/billing$"))
    expect(page.locator("h1", has_text="Billing")).to_be_visible()
    page.get_by_role("button", name="Notifications").or_(page.get_by_text("🔔")).first.click()
    expect(page.get_by_text("No notifications yet")).to_be_visible()
    assert browser.hosts() == {"127.0.0.1"}, f"requests left the machine: {browser.hosts()}"


def _wait_for_one_editor_with(page: Page, text: str, seconds: float = 30) -> None:
    frames = page.locator('iframe[title="code_editor.code_editor"]')
    seen = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if frames.count() == 1:
            try:
                seen = frames.content_frame.locator(".ace_content").text_content(timeout=1000) or ""
            except PlaywrightError:  # the frame went away between the count and the read
                seen = ""
            if text in seen:
                return
        page.wait_for_timeout(200)
    raise AssertionError(
        f"no single editor with {text!r} ({frames.count()} frames; {seen[:200]!r})"
    )


def _editor_text(page: Page, text: str) -> None:
    """Replace the Ace editor's content, as typing would (its iframe ships Ace itself)."""
    frame = page.frame_locator('iframe[title="code_editor.code_editor"]')
    frame.locator(".ace_content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_editor_validates_saves_activates_and_test_runs(
    platform_sqlite: Platform, browser: Browser, tmp_path: Path
) -> None:
    p = platform_sqlite
    page = signed_in(browser, p)
    page.goto(p.dashboard_url + "/editor")
    expect(page.locator("h1", has_text="New workflow")).to_be_visible()
    page.get_by_text("json", exact=True).click()
    # The template, now as JSON, in the one editor left once the rerun ends (for a moment the
    # YAML editor's frame and the new one are both on the page).
    _wait_for_one_editor_with(page, '"name": "My workflow"')

    _editor_text(page, json.dumps({"name": "Broken", "trigger": {"type": "manual"}}))
    expect(page.get_by_text(re.compile(r"\d+ problem\(s\) in the spec"))).to_be_visible()
    expect(page.locator("code", has_text="slug")).to_be_visible()  # the error's path
    expect(page.get_by_role("button", name="Save")).to_be_disabled()

    slug = f"e2e-{uuid.uuid4().hex[:6]}"
    spec = {
        "name": f"E2E {slug}",
        "slug": slug,
        "trigger": {"type": "manual"},
        "steps": [
            {
                "id": "greet",
                "name": "Greet",
                "type": "action",
                "config": {"action": "transform", "output": {"msg": "Hi {{ trigger.data.name }}"}},
            }
        ],
    }
    _editor_text(page, json.dumps(spec))
    expect(page.get_by_text("The spec is valid.")).to_be_visible()
    expect(page.locator('.orbin-step[data-step-id="greet"]')).to_be_visible()  # the graph
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/editor\?id="))
    expect(page.locator("h1", has_text=f"E2E {slug}")).to_be_visible()
    # A click that lands while the page still reruns after the save (the editor component
    # reports its value then) can be superseded by that rerun: click again, at most twice more.
    for attempt in range(3):
        page.get_by_role("button", name="Activate").click()
        try:
            expect(page.locator('.orbin-badge[data-status="active"]')).to_be_visible(timeout=10_000)
            break
        except AssertionError:
            if attempt == 2:
                raise

    page.get_by_label("Sample payload (JSON: becomes trigger.data)").fill('{"name": "Bo"}')
    page.get_by_role("button", name="Run a test").click()
    expect(page.locator('.orbin-badge[data-status="completed"]')).to_be_visible(timeout=30_000)
    expect(page.locator("[data-testid=stJson]").first).to_contain_text("Hi Bo")
    expect(page.locator("[data-testid=stCode]", has_text="+++ v2")).to_be_visible()  # v1 -> v2
    no_error(page)
    page.screenshot(path=str(tmp_path / "editor.png"), full_page=True)

    workflows = api(p, "GET", "/v1/workflows").json()
    mine = [w for w in workflows.get("data", workflows) if w.get("slug") == slug]
    assert mine and mine[0]["status"] == "active", mine


def test_a_failed_run_is_inspected_replayed_resumed_and_compared(
    platform_sqlite: Platform, browser: Browser, tmp_path: Path
) -> None:
    p = platform_sqlite
    slug = f"fails-{uuid.uuid4().hex[:6]}"
    step = {"action": "transform", "output": {"v": "{{ trigger.data.needed.value }}"}}
    created = api(
        p,
        "POST",
        "/v1/workflows",
        json={
            "name": "Fails",
            "slug": slug,
            "status": "active",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "first",
                    "name": "First",
                    "type": "action",
                    "config": {"action": "transform", "output": {"ok": True}},
                },
                {
                    "id": "boom",
                    "name": "Boom",
                    "type": "action",
                    "config": step,
                    "retryPolicy": {"maxAttempts": 1},
                },
            ],
        },
    )
    assert created.status_code == 201, created.text
    wf_id = created.json()["id"]
    run_ids = []
    for _ in range(2):
        r = api(p, "POST", f"/v1/workflows/{wf_id}/runs", json={"data": {}})
        assert r.status_code in (200, 201, 202), r.text
        run_ids.append(r.json()["runId"])

    page = signed_in(browser, p)
    page.goto(p.dashboard_url + f"/run?id={run_ids[1]}")
    expect(page.locator('h3 .orbin-badge[data-status="failed"]')).to_be_visible(timeout=30_000)
    page.reload()  # the finished run, no longer live
    expect(page.locator('h3 .orbin-badge[data-status="failed"]')).to_be_visible()
    expect(page.locator("h4", has_text="Boom")).to_be_visible()  # opens on the failed step
    page.get_by_role("button", name="Show the full error").click()
    expect(page.get_by_role("dialog")).to_contain_text("needed")
    page.keyboard.press("Escape")

    page.get_by_text("Compare with the previous run").click()
    expect(page.get_by_text(f"Previous run {run_ids[0]}", exact=False)).to_be_visible()
    page.screenshot(path=str(tmp_path / "failed-run.png"), full_page=True)

    page.get_by_role("button", name="Resume from failed step").click()
    expect(page).not_to_have_url(re.compile(run_ids[1]))
    resumed = page.url.rsplit("=", 1)[1]
    detail = api(p, "GET", f"/v1/runs/{resumed}").json()
    assert detail.get("parentRunId") == run_ids[1], detail

    page.goto(p.dashboard_url + f"/run?id={run_ids[1]}")
    page.get_by_role("button", name="Replay").click()
    expect(page).not_to_have_url(re.compile(run_ids[1]))
    replayed = page.url.rsplit("=", 1)[1]
    assert replayed not in (resumed, run_ids[1])
    no_error(page)


def refused_soon(p: Platform, key: str) -> bool:
    """The API remembers a key for a few seconds (tenancy/keys.py): refused within 10 s."""
    for _ in range(100):
        if api(p, "GET", "/v1/runs", key=key).status_code == 401:
            return True
        time.sleep(0.1)
    return False


def test_api_keys_are_created_rotated_and_revoked_and_the_audit_log_exported(
    platform_sqlite: Platform, browser: Browser, tmp_path: Path
) -> None:
    p = platform_sqlite
    page = signed_in(browser, p)
    page.goto(p.dashboard_url + "/api-keys")
    page.get_by_text("Create a key").click()
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create key").click()
    shown = page.locator("[data-testid=stCode] code", has_text="sk_live_")
    expect(shown).to_be_visible()
    key = shown.inner_text().strip()
    assert api(p, "GET", "/v1/runs", key=key).status_code == 200

    page.reload()
    expect(page.locator("[data-testid=stCode] code", has_text=key)).to_have_count(0)  # once
    page.get_by_role("button", name="Rotate").click()
    rotated = page.locator("[data-testid=stCode] code", has_text="sk_live_")
    expect(rotated).to_be_visible()
    new_key = rotated.inner_text().strip()
    assert new_key != key
    assert api(p, "GET", "/v1/runs", key=new_key).status_code == 200
    assert refused_soon(p, key), "the rotated-out key still works"

    page.get_by_role("button", name="Revoke").click()
    page.get_by_role("button", name="Yes, revoke").click()
    expect(page.get_by_text("Key revoked.")).to_be_visible()
    assert refused_soon(p, new_key), "the revoked key still works"
    page.screenshot(path=str(tmp_path / "api-keys.png"), full_page=True)

    page.goto(p.dashboard_url + "/audit")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    csv_text = Path(download.value.path()).read_text()
    assert csv_text.startswith("time_ms,actor,")
    assert "api_key.created" in csv_text and "api_key.rotated" in csv_text
    no_error(page)
