"""Signing in to the dashboard in headless Chromium against `orbin up`, through identity: an
account with MFA is asked for its code on a second form; an organization requiring MFA sends
its member to set it up, recovery codes shown once; signing out ends the API session too."""

from __future__ import annotations

import re
import uuid

import httpx
import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Browser
from tests.support.services import Platform

pytestmark = pytest.mark.e2e

PW = "a long passphrase for e2e"


def api(p: Platform, method: str, path: str, token: str | None = None, **kw) -> httpx.Response:
    headers = kw.pop("headers", {})
    if token:
        headers["authorization"] = f"Bearer {token}"
    return httpx.request(method, p.api_url + path, headers=headers, timeout=60, **kw)


def account_with_org(p: Platform) -> tuple[str, str, str]:
    """A new account owning a new organization: (email, session token, slug)."""
    tag = uuid.uuid4().hex[:8]
    email, slug = f"e2e-{tag}@example.com", f"e2e-{tag}"
    r = api(p, "POST", "/v1/auth/signup", json={"email": email, "password": PW, "name": "Eve"})
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    r = api(p, "POST", "/v1/orgs", token, json={"name": f"E2E {tag}", "slug": slug})
    assert r.status_code == 201, r.text
    return email, token, slug


def password_step(page: Page, p: Platform, email: str) -> None:
    page.goto(p.dashboard_url + "/")
    page.fill("#email", email)
    page.fill("#password", PW)
    page.get_by_role("button", name="Sign in").click()


def test_an_mfa_account_signs_in_with_its_code_then_a_recovery_code(
    platform_sqlite: Platform, browser: Browser
) -> None:
    p = platform_sqlite
    email, token, _ = account_with_org(p)
    secret = api(p, "POST", "/v1/auth/mfa/enroll", token).json()["secret"]
    r = api(p, "POST", "/v1/auth/mfa/verify", token, json={"code": pyotp.TOTP(secret).now()})
    recovery = r.json()["recoveryCodes"]
    page = browser.context.new_page()

    password_step(page, p, email)
    expect(page.get_by_label("Authentication code")).to_be_visible()
    page.goto(p.dashboard_url + "/runs")  # the password alone opens nothing
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Fruns$"))

    password_step(page, p, email)
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_have_text("That code is not valid.")
    page.get_by_label("Authentication code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    cookie = next(c for c in browser.context.cookies() if c["name"] == "orbin_session")
    assert cookie["httpOnly"] and cookie["value"].startswith("ses_")
    assert api(p, "GET", "/v1/me", cookie["value"]).status_code == 200, "the API's session"

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("alert")).to_have_text("You signed out.")
    assert api(p, "GET", "/v1/me", cookie["value"]).status_code == 401, "ended server-side"

    password_step(page, p, email)
    page.get_by_label("Authentication code").fill(recovery[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("[data-testid=stException]")).to_have_count(0)


def test_an_organization_requiring_mfa_has_its_member_set_it_up(
    platform_sqlite: Platform, browser: Browser
) -> None:
    p = platform_sqlite
    email, token, slug = account_with_org(p)
    r = api(
        p,
        "PATCH",
        "/v1/orgs/current",
        token,
        json={"requireMfa": True},
        headers={"x-orbin-org": slug},
    )
    assert r.status_code == 200, r.text
    page = browser.context.new_page()
    password_step(page, p, email)
    expect(page.get_by_text(f"{slug} requires MFA")).to_be_visible()
    expect(page.get_by_role("heading", name="Overview")).to_have_count(0)

    page.get_by_role("link", name="Set up two-factor authentication").click()
    secret = page.locator("#mfa-secret").inner_text()
    page.get_by_label("The 6-digit code it shows").fill("000000")
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.get_by_role("alert")).to_contain_text("does not match")
    assert page.locator("#mfa-secret").inner_text() == secret, "the same key, to try again"
    page.get_by_label("The 6-digit code it shows").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="Continue to the dashboard").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    me = api(p, "GET", "/v1/me", token).json()
    assert me["user"]["mfaEnabled"] is True


def test_single_sign_on_into_the_dashboard(platform_sqlite: Platform, browser: Browser) -> None:
    """The organization's provider is a real OIDC process (on 127.0.0.2, which the platform's
    egress policy allows for the tests' local services)."""
    from tests.support.oidc_server import CLIENT_ID, CLIENT_SECRET, OidcProcess
    from tests.support.services import free_port

    p = platform_sqlite
    email, token, slug = account_with_org(p)
    domain = f"{slug}.test"
    idp = OidcProcess("127.0.0.2", free_port())
    try:
        idp.control(user={"sub": "s-1", "email": f"sam@{domain}", "name": "Sam SSO"})
        r = api(
            p,
            "PUT",
            "/v1/orgs/current/sso",
            token,
            headers={"x-orbin-org": slug},
            json={
                "issuer": idp.issuer,
                "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "allowedDomains": [domain],
                "defaultRole": "member",
            },
        )
        assert r.status_code == 200, r.text
        page = browser.context.new_page()
        page.goto(p.dashboard_url + "/runs")
        page.get_by_label("Single sign-on: your organization's slug").fill(slug)
        page.get_by_role("button", name="Continue with SSO").click()
        expect(page.get_by_role("heading", name="Runs")).to_be_visible()
        expect(page.get_by_text("Signed in as Sam SSO")).to_be_visible()
        assert [e["path"] for e in idp.log() if e["path"] in ("/authorize", "/token")] == [
            "/authorize",
            "/token",
        ]

        idp.control(user={"sub": "s-2", "email": "eve@elsewhere.test", "name": "Eve"})
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("Single sign-on: your organization's slug").fill(slug)
        page.get_by_role("button", name="Continue with SSO").click()
        expect(page.get_by_role("alert")).to_have_text(
            "Your e-mail's domain may not sign in to this organization."
        )
    finally:
        idp.close()
