"""The organization's and the user's screens in headless Chromium against `orbin up`, with the
outside services as local servers speaking their protocols (Stripe, the OpenAI API, a webhook
receiver): a member is invited and accepts as themselves from the mailed link; a password is
changed (other sessions end); MFA is turned on with a code computed from the shown secret; an
integration is connected, tested and disconnected; a Stripe Checkout is started; a workflow is
drafted by AI and saved, and a failed run is diagnosed. Screenshots go to the test's folder."""

from __future__ import annotations

import email
import re
import secrets
import uuid
from collections.abc import Iterator
from email import policy
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Browser
from tests.support import services
from tests.support.openai_server import FakeOpenAI
from tests.support.providers import Providers
from tests.support.stripe_server import StripeServer

pytestmark = pytest.mark.e2e

DEMO_EMAIL = "demo@orbin.local"
STRIPE_KEY = "sk_test_dashboard"


@pytest.fixture(scope="module")
def stripe() -> Iterator[StripeServer]:
    with StripeServer(api_key=STRIPE_KEY) as s:
        yield s


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    server, url = fake.start()
    fake.url = url  # type: ignore[attr-defined]
    yield fake
    server.shutdown()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Providers]:
    r = Providers()
    yield r
    r.close()


@pytest.fixture(scope="module")
def p(
    tmp_path_factory: pytest.TempPathFactory,
    stripe: StripeServer,
    model: FakeOpenAI,
    receiver: Providers,
) -> Iterator[services.Platform]:
    platform = services.start_platform(
        tmp_path_factory.mktemp("orbin-dash-people"),
        extra_env={
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "ORBIN_STRIPE_API_BASE": stripe.url,
            "OPENAI_API_KEY": "sk-dash-" + secrets.token_hex(8),
            "OPENAI_BASE_URL": model.url,  # type: ignore[attr-defined]
            "ORBIN_AI_MODEL": "dash-model",
            "ORBIN_EGRESS_ALLOW": f"127.0.0.2,127.0.0.1:{receiver.port}",
        },
    )
    try:
        yield platform
    finally:
        platform.stop()


def sign_in(browser: Browser, p: services.Platform, address: str, password: str) -> Page:
    page = browser.context.new_page()
    page.goto(p.dashboard_url + "/")
    page.fill("#email", address)
    page.fill("#password", password)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    return page


def no_error(page: Page) -> None:
    expect(page.locator("[data-testid=stException]")).to_have_count(0)


def api(p: services.Platform, method: str, path: str, **kw) -> httpx.Response:
    headers = {"x-api-key": p.demo_key, **kw.pop("headers", {})}
    return httpx.request(method, p.api_url + path, headers=headers, timeout=30, **kw)


def new_admin(p: services.Platform) -> tuple[str, str]:
    """A fresh admin of the demo organization: (e-mail, generated password)."""
    address = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    out = p.orbin("user", "create", "--email", address, "--name", "Ann Admin", "--org", "demo",
                  "--role", "admin")  # fmt: skip
    return address, re.search(r"password: (\S+)", out).group(1)


def api_session(p: services.Platform, address: str, password: str, **extra) -> httpx.Response:
    return httpx.post(
        p.api_url + "/v1/auth/signin",
        json={"email": address, "password": password, **extra},
        timeout=30,
    )


def invitation_link(p: services.Platform, address: str) -> str:
    """The link of the newest mail to ``address`` in the outbox folder."""
    for path in sorted((p.home / "outbox").glob("*.eml"), reverse=True):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if address in str(msg["To"]):
            text = msg.get_body(preferencelist=("plain",)).get_content()
            return re.search(r"(http\S+/accept-invitation\?token=\S+)", text).group(1)
    raise AssertionError(f"no mail to {address} in {p.home / 'outbox'}")


def test_a_member_is_invited_and_accepts_as_themselves(
    p: services.Platform, browser: Browser, playwright_driver, tmp_path: Path
) -> None:
    page = sign_in(browser, p, DEMO_EMAIL, p.demo_password)
    page.goto(p.dashboard_url + "/members")
    expect(page.locator("h1", has_text="Members")).to_be_visible()
    invitee = f"bo-{uuid.uuid4().hex[:6]}@example.com"
    form = page.get_by_test_id("stForm")
    form.get_by_label("E-mail").fill(invitee)
    form.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("button", name="Resend")).to_be_visible()
    expect(page.get_by_text(invitee).first).to_be_visible()
    first_link = invitation_link(p, invitee)

    page.get_by_role("button", name="Resend").click()
    expect(page.get_by_text("Invitation sent again")).to_be_visible()
    link = invitation_link(p, invitee)
    assert link != first_link
    assert httpx.get(first_link, timeout=30).status_code == 404  # the old link is dead
    page.screenshot(path=str(tmp_path / "members-invited.png"), full_page=True)

    # The invitee, in a browser of their own, from the link in the mail.
    theirs = Browser(playwright_driver, tmp_path / "invitee-profile")
    try:
        them = theirs.context.new_page()
        them.goto(link)
        expect(them.get_by_role("heading", name="Join Demo")).to_be_visible()
        them.fill("#name", "Bo Invitee")
        them.fill("#password", "a long passphrase 1")
        them.fill("#confirm", "a long passphrase 2")
        them.click("button[type=submit]")
        expect(them.get_by_role("alert")).to_contain_text("The passwords differ")
        them.fill("#password", "a long passphrase 1")
        them.fill("#confirm", "a long passphrase 1")
        them.screenshot(path=str(tmp_path / "accept-invitation.png"), full_page=True)
        them.click("button[type=submit]")
        expect(them.get_by_role("heading", name="Overview")).to_be_visible()
        signed_in_as = them.get_by_text(re.compile(r"Signed in as Bo Invitee · member"))
        expect(signed_in_as).to_be_visible()  # as themselves, with the invitation's role
        no_error(them)
        them.screenshot(path=str(tmp_path / "invitee-overview.png"), full_page=True)
        assert httpx.get(link, timeout=30).status_code == 410  # used once
    finally:
        theirs.context.close()

    page.reload()
    expect(page.locator("table", has_text=invitee)).to_be_visible()  # a member now
    expect(page.get_by_role("button", name="Resend")).to_have_count(0)  # no longer pending

    other = f"cy-{uuid.uuid4().hex[:6]}@example.com"
    form.get_by_label("E-mail").fill(other)
    form.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("button", name="Revoke")).to_be_visible()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Invitation revoked")).to_be_visible()
    assert httpx.get(invitation_link(p, other), timeout=30).status_code == 410
    no_error(page)


def test_a_password_change_ends_the_other_sessions(
    p: services.Platform, browser: Browser, tmp_path: Path
) -> None:
    address, password = new_admin(p)
    elsewhere = api_session(p, address, password)
    assert elsewhere.status_code == 200, elsewhere.text
    bearer = {"authorization": f"Bearer {elsewhere.json()['token']}"}
    assert httpx.get(p.api_url + "/v1/me", headers=bearer, timeout=30).status_code == 200

    page = sign_in(browser, p, address, password)
    page.goto(p.dashboard_url + "/account")
    expect(page.locator("h1", has_text="Account")).to_be_visible()
    expect(page.get_by_text("python-httpx")).to_be_visible()  # the API session, listed
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password (at least 12 characters)").fill("short")
    page.get_by_label("Repeat the new password").fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("password must have at least 12 characters")).to_be_visible()

    new_password = "a brand new passphrase"
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password (at least 12 characters)").fill(new_password)
    page.get_by_label("Repeat the new password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed.")).to_be_visible()
    page.screenshot(path=str(tmp_path / "account-password.png"), full_page=True)

    assert httpx.get(p.api_url + "/v1/me", headers=bearer, timeout=30).status_code == 401
    assert api_session(p, address, password).status_code == 401
    assert api_session(p, address, new_password).status_code == 200
    page.get_by_role("link", name="Sign in again").click()
    expect(page.locator("#email")).to_be_visible()
    page.fill("#email", address)
    page.fill("#password", new_password)
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # One session revoked from the list: its token stops working.
    again = api_session(p, address, new_password).json()["token"]
    page.goto(p.dashboard_url + "/account")
    revoke = page.get_by_role("button", name="Revoke")
    expect(revoke).to_have_count(2)  # the sign-in checked above, and this one
    expect(page.get_by_text("this browser", exact=True)).to_have_count(1)  # this browser: no revoke
    revoke.first.click()
    expect(revoke).to_have_count(1)
    revoke.first.click()
    expect(revoke).to_have_count(0)
    gone = httpx.get(p.api_url + "/v1/me", headers={"authorization": f"Bearer {again}"})
    assert gone.status_code == 401
    no_error(page)


def test_mfa_is_enrolled_with_the_shown_secret_and_preferences_saved(
    p: services.Platform, browser: Browser, tmp_path: Path
) -> None:
    address, password = new_admin(p)
    page = sign_in(browser, p, address, password)
    page.goto(p.dashboard_url + "/account")
    page.get_by_role("button", name="Set up MFA").click()
    expect(page.locator("[data-testid=stImage] img")).to_be_visible()  # the QR code
    expect(page.get_by_text("Scan with your authenticator app")).to_be_visible()
    secret = page.locator("[data-testid=stCode] code").first.inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    page.get_by_label("6-digit code from the app").fill("000000")
    page.get_by_role("button", name="Verify and turn on").click()
    expect(page.get_by_text("the code does not match")).to_be_visible()
    page.screenshot(path=str(tmp_path / "account-mfa-qr.png"), full_page=True)
    page.get_by_label("6-digit code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Verify and turn on").click()
    expect(page.get_by_text("Save these recovery codes now")).to_be_visible()
    codes = page.locator("[data-testid=stCode] code").first.inner_text().split()
    assert len(codes) == 10 and len(set(codes)) == 10
    page.screenshot(path=str(tmp_path / "account-recovery-codes.png"), full_page=True)
    page.get_by_role("button", name="I saved them").click()
    expect(page.get_by_text("signing in asks for a code from your authenticator")).to_be_visible()
    expect(page.get_by_text(codes[0])).to_have_count(0)  # shown once

    refused = api_session(p, address, password)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "mfa_required"
    assert api_session(p, address, password, totp=pyotp.TOTP(secret).now()).status_code == 200
    assert api_session(p, address, password, recoveryCode=codes[0]).status_code == 200

    page.get_by_test_id("stForm").filter(has_text="Save preferences").get_by_text(
        "E-mail"
    ).first.click()  # a failed run: also by e-mail
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_text("Notification preferences saved.")).to_be_visible()
    token = api_session(p, address, password, recoveryCode=codes[1]).json()["token"]
    prefs = httpx.get(
        p.api_url + "/v1/me/notification-preferences",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert prefs["workflow_failed"]["email"] is True
    no_error(page)


def test_an_integration_is_connected_tested_and_disconnected(
    p: services.Platform, browser: Browser, receiver: Providers, tmp_path: Path
) -> None:
    page = sign_in(browser, p, DEMO_EMAIL, p.demo_password)
    page.goto(p.dashboard_url + "/integrations")
    expect(page.locator("h1", has_text="Integrations")).to_be_visible()
    page.get_by_text("Webhook", exact=True).click()
    form = page.get_by_test_id("stForm")
    form.get_by_label("Name (how steps refer to it)").fill("hook")
    form.get_by_label("url", exact=True).fill(f"{receiver.url}/hook")
    form.get_by_label("signingSecret", exact=True).fill("whsec-dashboard-e2e")
    form.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("hook connected.")).to_be_visible()

    card = page.locator(".st-key-integrations-card-hook")
    expect(card).to_contain_text("last used never")
    card.get_by_role("button", name="Test").click()
    expect(card.get_by_text("Connection works")).to_be_visible()
    expect(card).to_contain_text(re.compile(r"last used (just now|\d+ s ago)"))
    pings = [c for c in receiver.calls if c.path == "/hook" and c.method == "POST"]
    assert pings and pings[-1].headers.get("orbin-signature", "").startswith("t=")
    no_error(page)
    page.screenshot(path=str(tmp_path / "integrations.png"), full_page=True)

    card.get_by_role("button", name="Disconnect").click()
    page.get_by_role("button", name="Yes, disconnect").click()
    expect(page.get_by_text("Disconnected.")).to_be_visible()
    expect(page.locator(".st-key-integrations-card-hook")).to_have_count(0)
    listed = api(p, "GET", "/v1/integrations").json()["data"]
    assert not [i for i in listed if i["name"] == "hook"]


def test_an_upgrade_starts_a_stripe_checkout(
    p: services.Platform, browser: Browser, stripe: StripeServer, tmp_path: Path
) -> None:
    page = sign_in(browser, p, DEMO_EMAIL, p.demo_password)
    page.goto(p.dashboard_url + "/billing")
    expect(page.locator("h1", has_text="Billing")).to_be_visible()
    page.get_by_role("button", name="Upgrade to Pro").click()
    go = page.get_by_role("link", name=re.compile("Continue to Stripe Checkout for Pro"))
    expect(go).to_be_visible()
    (session,) = stripe.calls("POST", "/v1/checkout/sessions")
    expect(go).to_have_attribute("href", re.compile(r"^https://checkout\.stripe\.test/c/pay/cs_"))
    org_id = api(p, "GET", "/v1/billing").json()["organizationId"]
    assert session.fields["metadata"]["orbin_org_id"] == org_id
    assert session.fields["line_items"][0]["price"] == "price_pro"
    page.screenshot(path=str(tmp_path / "billing-checkout.png"), full_page=True)

    (customer,) = stripe.customers
    stripe.invoices = [
        {"id": "in_1", "object": "invoice", "customer": customer, "number": "ORB-0001",
         "status": "paid", "amount_due": 4900, "amount_paid": 4900, "currency": "usd",
         "created": 1767225600, "hosted_invoice_url": "https://invoice.stripe.test/i/1"}
    ]  # fmt: skip
    page.reload()
    expect(page.locator("table", has_text="ORB-0001")).to_contain_text("49.00 USD")
    page.get_by_role("button", name="Open the payment portal").click()
    portal = page.get_by_role("link", name=re.compile("Continue to the payment portal"))
    expect(portal).to_have_attribute("href", re.compile(r"^https://billing\.stripe\.test/"))
    no_error(page)
    assert browser.hosts() == {"127.0.0.1"}, f"requests left the machine: {browser.hosts()}"


GENERATED = {
    "spec": {
        "name": "Welcome new users",
        "slug": "welcome-new-users",
        "trigger": {"type": "event", "config": {"eventType": "user.created"}},
        "steps": [{"id": "greet", "name": "Greet", "type": "action",
                   "config": {"action": "transform",
                              "output": {"hi": "{{ trigger.data.name }}"}}}],
    },
    "explanation": "Greets each new user by name.",
}  # fmt: skip


def test_a_workflow_is_drafted_by_ai_and_a_failed_run_diagnosed(
    p: services.Platform, browser: Browser, model: FakeOpenAI, tmp_path: Path
) -> None:
    model.script(GENERATED)
    page = sign_in(browser, p, DEMO_EMAIL, p.demo_password)
    page.goto(p.dashboard_url + "/editor")
    expect(page.locator("h1", has_text="New workflow")).to_be_visible()
    page.get_by_label("Describe the workflow in plain words").fill("greet every new user")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.get_by_text("Greets each new user by name.")).to_be_visible()
    editor = page.frame_locator('iframe[title="code_editor.code_editor"]').locator(".ace_content")
    expect(editor).to_contain_text("Welcome new users")
    expect(page.get_by_text("The spec is valid.")).to_be_visible()
    assert "greet every new user" in model.everything_sent()
    page.screenshot(path=str(tmp_path / "editor-ai.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1", has_text="Workflow: Welcome new users")).to_be_visible()

    created = api(p, "POST", "/v1/workflows", json={
        "name": "Breaks", "slug": f"breaks-{uuid.uuid4().hex[:6]}", "status": "active",
        "trigger": {"type": "manual"},
        "steps": [{"id": "boom", "name": "Boom", "type": "action",
                   "retryPolicy": {"maxAttempts": 1},
                   "config": {"action": "transform",
                              "output": {"v": "{{ trigger.data.missing.value }}"}}}],
    })  # fmt: skip
    assert created.status_code == 201, created.text
    run_id = api(p, "POST", f"/v1/workflows/{created.json()['id']}/runs", json={"data": {}}).json()[
        "runId"
    ]
    model.script(
        {
            "summary": "The step reads trigger.data.missing, which the event lacks.",
            "likelyCause": "The payload has no 'missing' field.",
            "suggestedFix": "Send the field, or give the template a default.",
        }
    )
    page.goto(p.dashboard_url + f"/run?id={run_id}")
    expect(page.locator('h3 .orbin-badge[data-status="failed"]')).to_be_visible(timeout=60_000)
    page.reload()  # finished: the debugger with its actions
    page.get_by_role("button", name="Diagnose with AI").click()
    box = page.locator(".st-key-run_detail-diagnosis_box")
    expect(box).to_contain_text("which the event lacks")
    expect(box).to_contain_text("give the template a default")
    no_error(page)
    page.screenshot(path=str(tmp_path / "run-diagnosis.png"), full_page=True)
