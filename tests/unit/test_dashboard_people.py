"""The dashboard's people screens through their seams (streamlit_app/services) and the
invitee's accept page over HTTP: every refusal comes from the service layer (the pages only
hide the buttons), a user's sessions are their own, an invitation link works once."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from urllib.parse import unquote

import pyotp
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

PASSWORD = "correct-horse-battery"


@dataclass
class People:
    org: str
    other_org: str
    users: dict[str, str]  # name -> user id


@pytest.fixture
def people(database: str) -> People:
    """Org A: owner ann, admin adam, member mia, viewer vic; org B: owner bob."""
    from tenancy.db import session_scope
    from tenancy.orgs import add_member, create_organization, create_user

    with session_scope() as s:
        users = {
            n: create_user(s, email=f"{n}@example.com", name=n.title(), password=PASSWORD).id
            for n in ("ann", "adam", "mia", "vic", "bob")
        }
        a = create_organization(s, name="Alpha", slug="alpha")
        b = create_organization(s, name="Beta", slug="beta")
        for n, role in (("ann", "owner"), ("adam", "admin"), ("mia", "member"), ("vic", "viewer")):
            add_member(s, organization_id=a.id, user_id=users[n], role=role)
        add_member(s, organization_id=b.id, user_id=users["bob"], role="owner")
    return People(a.id, b.id, users)


def actor(p: People, name: str, org: str | None = None):
    from streamlit_app.services.base import Actor

    return Actor(p.users[name], org or p.org)


def mailed_token(address: str) -> str:
    """The token of the newest invitation mailed to ``address`` (the outbox's .eml files)."""
    from tenancy.config import get_settings

    found = ""
    for path in sorted((get_settings().home / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if address in str(msg["To"]):
            text = msg.get_body(preferencelist=("plain",)).get_content()
            found = unquote(re.search(r"accept-invitation\?token=(\S+)", text).group(1))
    assert found, f"no invitation mailed to {address}"
    return found


def test_invitations_follow_the_roles(people: People) -> None:
    from streamlit_app.services import invitations as inv

    refused = inv.invite(actor(people, "vic"), "new@example.com", "viewer")
    assert not refused.ok and "members:write" in refused.message
    assert not inv.invite(actor(people, "adam"), "boss@example.com", "owner").ok
    assert not inv.invite(actor(people, "adam"), "mia@example.com", "member").ok  # a member
    assert inv.roles_to_invite("admin") == ["viewer", "member", "admin"]

    sent = inv.invite(actor(people, "adam"), "New@Example.com ", "admin")
    assert sent.ok, sent.message
    rows = inv.pending(actor(people, "vic")).value  # everyone sees who is invited
    assert [(r.email, r.role, r.invited_by) for r in rows] == [("new@example.com", "admin", "Adam")]
    assert inv.pending(actor(people, "bob", people.other_org)).value == []  # B sees none of A's
    assert not inv.revoke(actor(people, "bob", people.other_org), rows[0].id).ok
    assert not inv.resend(actor(people, "mia"), rows[0].id).ok

    token = mailed_token("new@example.com")
    assert inv.resend(actor(people, "adam"), rows[0].id).ok
    from tenancy.errors import Gone, NotFound

    with pytest.raises(NotFound):
        inv.preview(token)  # the resent link replaces the first
    assert inv.revoke(actor(people, "ann"), rows[0].id).ok
    with pytest.raises(Gone):
        inv.preview(mailed_token("new@example.com"))


def test_sessions_are_listed_and_revoked_for_their_own_user_only(people: People) -> None:
    from streamlit_app.services import account
    from tenancy.db import session_scope
    from tenancy.errors import Unauthenticated
    from tenancy.identity.sessions import authenticate_session, create_session

    with session_scope() as s:
        mine = create_session(s, people.users["mia"], user_agent="curl/8")
        theirs = create_session(s, people.users["vic"], user_agent="httpie")
    listed = account.sessions(people.users["mia"])
    assert [(r.id, r.user_agent, r.current) for r in listed] == [(mine.row.id, "curl/8", False)]
    (seen,) = account.sessions(people.users["mia"], mine.token)
    assert seen.current, "the browser's own session is marked as such"
    assert not account.revoke_session(people.users["mia"], theirs.row.id).ok
    assert account.revoke_session(people.users["mia"], mine.row.id).ok
    assert account.sessions(people.users["mia"]) == []
    with session_scope() as s:
        authenticate_session(s, theirs.token)  # untouched
        with pytest.raises(Unauthenticated):
            authenticate_session(s, mine.token)


def test_password_change_and_mfa_enrolment(people: People) -> None:
    from streamlit_app.services import account
    from tenancy.db import session_scope
    from tenancy.identity.sessions import create_session, read_user_sessions

    user = people.users["mia"]
    with session_scope() as s:
        create_session(s, user)
    assert not account.change_password(user, current="wrong", new="x" * 12, repeat="x" * 12).ok
    assert not account.change_password(user, current=PASSWORD, new="short", repeat="short").ok
    assert not account.change_password(user, current=PASSWORD, new="a" * 12, repeat="b" * 12).ok
    done = account.change_password(
        user, current=PASSWORD, new="a new passphrase", repeat="a new passphrase"
    )
    assert done.ok, done.message
    with session_scope() as s:
        assert read_user_sessions(s, user) == []  # signed out everywhere

    started = account.begin_mfa(user)
    assert started.ok and started.value.uri.startswith("otpauth://totp/")
    assert not account.verify_mfa(user, "000000").ok
    codes = account.verify_mfa(user, pyotp.TOTP(started.value.secret).now()).value
    assert len(codes) == 10 and account.profile(user).mfa_enabled
    assert not account.begin_mfa(user).ok  # already on
    assert not account.disable_mfa(user, password="a new passphrase", code="123").ok
    assert account.disable_mfa(user, password="a new passphrase", code=codes[0]).ok
    assert not account.profile(user).mfa_enabled


def test_notification_preferences_are_validated(people: People) -> None:
    from streamlit_app.services import account

    user = people.users["mia"]
    assert account.update_preferences(user, {"workflow_failed": {"email": True}}).ok
    assert account.preferences(user)["workflow_failed"] == {"inApp": True, "email": True}
    assert not account.update_preferences(user, {"nope": {"email": True}}).ok


def test_integrations_billing_and_ai_refuse_the_roles_that_may_not(people: People) -> None:
    from streamlit_app.services import ai, billing, integrations

    body = {"url": "https://hooks.example.com/x", "signingSecret": "s3cret-value"}
    refused = integrations.connect(actor(people, "mia"), "webhook", "hook", body)
    assert not refused.ok
    assert integrations.integrations(people.org) == []
    missing = integrations.connect(actor(people, "adam"), "webhook", "hook", {"url": body["url"]})
    assert not missing.ok and "signingSecret" in missing.message
    made = integrations.connect(actor(people, "adam"), "webhook", "hook", body)
    assert made.ok, made.message
    (row,) = integrations.integrations(people.org)
    assert integrations.integrations(people.other_org) == []
    assert not integrations.test(actor(people, "mia"), row.id).ok
    assert not integrations.disconnect(actor(people, "bob", people.other_org), row.id).ok
    assert not integrations.oauth_start(actor(people, "adam"), "slack", "team").ok  # no app set
    assert integrations.disconnect(actor(people, "adam"), row.id).ok
    assert integrations.integrations(people.org) == []

    assert not billing.checkout(actor(people, "adam"), "pro").ok  # owners change the plan
    assert not billing.stripe_configured()
    assert not ai.available(actor(people, "ann"))  # no model configured here


async def _page(request) -> PlainTextResponse:
    return PlainTextResponse("dashboard")


@pytest.fixture
def client(people: People):
    from streamlit_app import server

    app = Starlette(routes=[*server.routes(), Route("/", _page)], middleware=server.middleware())
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as c:
        yield c


def _form(client: TestClient, token: str) -> str:
    page = client.get(f"/accept-invitation?token={token}")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_the_invitee_signs_up_from_the_link_and_joins(client, people: People) -> None:
    from streamlit_app.services import invitations as inv

    assert client.get("/accept-invitation?token=nope").status_code == 404
    assert inv.invite(actor(people, "adam"), "zoe@example.com", "member").ok
    token = mailed_token("zoe@example.com")
    csrf = _form(client, token)
    assert "Join Alpha" in client.get(f"/accept-invitation?token={token}").text
    no_csrf = client.post("/accept-invitation", data={"token": token, "password": "x" * 12})
    assert no_csrf.status_code == 400
    form = {
        "token": token,
        "csrf": csrf,
        "name": "Zoe <b>",
        "password": "short",
        "confirm": "short",
    }
    weak = client.post("/accept-invitation", data=form)
    assert weak.status_code == 400 and "at least 12 characters" in weak.text
    form.update(password="zoe's passphrase", confirm="zoe's passphrase")
    joined = client.post("/accept-invitation", data=form)
    assert joined.status_code == 303 and joined.headers["location"] == "/"
    assert client.get("/").text == "dashboard"  # signed in by the cookie just set
    assert client.get(f"/accept-invitation?token={token}").status_code == 410  # once
    from streamlit_app import accounts

    token = accounts.sign_in("zoe@example.com", "zoe's passphrase", ip=None, user_agent=None)
    user = accounts.current_user(token)
    assert user is not None
    (m,) = accounts.read_memberships(user.id)
    assert (m.slug, m.role) == ("alpha", "member")


def test_an_existing_account_joins_with_its_own_password(client, people: People) -> None:
    from streamlit_app.services import invitations as inv

    assert inv.invite(actor(people, "bob", people.other_org), "mia@example.com", "viewer").ok
    token = mailed_token("mia@example.com")
    csrf = _form(client, token)
    assert "enter its password" in client.get(f"/accept-invitation?token={token}").text
    wrong = client.post("/accept-invitation", data={"token": token, "csrf": csrf, "password": "x"})
    assert wrong.status_code == 400 and "give its password" in wrong.text
    right = client.post(
        "/accept-invitation", data={"token": token, "csrf": csrf, "password": PASSWORD}
    )
    assert right.status_code == 303
    from streamlit_app import accounts

    slugs = {m.slug for m in accounts.read_memberships(people.users["mia"])}
    assert slugs == {"alpha", "beta"}


def test_oauth_is_offered_where_the_operator_set_the_app_up(
    people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from streamlit_app.services import integrations

    assert not any(p.oauth for p in integrations.providers())
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_CLIENT_ID", "client-123")
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_CLIENT_SECRET", "shh")
    offered = {p.name for p in integrations.providers() if p.oauth}
    assert offered == {"slack"}
    assert not integrations.oauth_start(actor(people, "mia"), "slack", "team").ok  # admins
    started = integrations.oauth_start(actor(people, "adam"), "slack", "team")
    assert started.ok, started.message
    url = urlsplit(started.value)
    query = parse_qs(url.query)
    assert url.netloc == "slack.com" and query["client_id"] == ["client-123"]
    assert query["code_challenge_method"] == ["S256"] and query["state"]
