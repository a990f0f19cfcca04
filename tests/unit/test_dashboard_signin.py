"""The dashboard signs in through identity, from outside over HTTP: MFA's second form (TOTP or
a recovery code), the session shared with the API and ended by it, an organization requiring
MFA, and the audit trail of sign-ins. SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pyotp
import pytest
from fastapi.testclient import TestClient as ApiClient
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.unit.test_dashboard_server import _page, assert_refused, sign_in

PASSWORD = "correct-horse-battery"


@pytest.fixture
def world(database: str) -> dict[str, str]:
    """Alpha with Ada (MFA on) and Ben (no MFA); returns Ada's TOTP secret and the ids."""
    from tenancy.db import session_scope
    from tenancy.identity import accounts
    from tenancy.orgs import add_member, create_organization, create_user

    with session_scope() as session:
        org = create_organization(session, name="Alpha", slug="alpha")
        ada = create_user(session, email="ada@example.com", name="Ada", password=PASSWORD)
        ben = create_user(session, email="ben@example.com", name="Ben", password=PASSWORD)
        add_member(session, organization_id=org.id, user_id=ada.id, role="owner")
        add_member(session, organization_id=org.id, user_id=ben.id, role="member")
        secret = accounts.begin_mfa_enrollment(session, ada)["secret"]
        codes = accounts.verify_mfa_enrollment(session, ada, pyotp.TOTP(secret).now())
        return {"secret": secret, "recovery": codes[0], "org": org.id, "ada": ada.id}


@pytest.fixture
def client(world: dict[str, str]):
    from streamlit_app import server

    app = Starlette(
        routes=[*server.routes(), Route("/", _page), Route("/runs", _page)],
        middleware=server.middleware(),
    )
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as c:
        yield c


@pytest.fixture
def api(world: dict[str, str]):
    from ingest_api import create_app

    with ApiClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def mfa_step(client: TestClient, code: str, next_url: str = "/"):
    csrf = client.cookies["orbin_csrf"]  # the form's hidden field holds the cookie's value
    return client.post(
        "/signin", data={"step": "mfa", "code": code, "csrf": csrf, "next": next_url}
    )


def test_mfa_accounts_need_their_code_on_a_second_form(client, world) -> None:
    first = sign_in(client, "ada@example.com", PASSWORD, next_url="/runs")
    client.get("/signin?next=%2Ffavicon.ico")  # the browser's own request, redirected
    assert first.status_code == 200 and 'name="code"' in first.text
    assert "orbin_session" not in first.headers.get("set-cookie", "")
    assert PASSWORD not in first.text, "the password is not carried in the page"
    assert_refused(client)  # a right password alone opens nothing

    wrong = mfa_step(client, "000000", "/runs")
    assert wrong.status_code == 401 and "That code is not valid." in wrong.text
    right = mfa_step(client, pyotp.TOTP(world["secret"]).now(), "/runs")
    assert right.status_code == 303 and right.headers["location"] == "/runs"
    assert client.cookies["orbin_session"].startswith("ses_")
    assert client.get("/runs").status_code == 200


def test_a_recovery_code_works_once_and_the_ticket_once(client, world) -> None:
    sign_in(client, "ada@example.com", PASSWORD)
    ticket = client.cookies["orbin_mfa"]
    assert mfa_step(client, world["recovery"]).status_code == 303
    client.cookies.clear()
    client.get("/signin")
    client.cookies.set("orbin_mfa", ticket, path="/signin")  # the same ticket again
    again = mfa_step(client, pyotp.TOTP(world["secret"]).now())
    assert again.status_code == 401 and 'name="password"' in again.text
    sign_in(client, "ada@example.com", PASSWORD)
    assert mfa_step(client, world["recovery"]).status_code == 401, "a recovery code works once"
    client.cookies.clear()
    client.get("/signin")
    no_ticket = mfa_step(client, pyotp.TOTP(world["secret"]).now())
    assert no_ticket.status_code == 401 and "start again" in no_ticket.text


def test_wrong_codes_count_towards_the_lockout(client, world) -> None:
    sign_in(client, "ada@example.com", PASSWORD)
    assert [mfa_step(client, f"{i:06d}").status_code for i in range(9)] == [401] * 9
    sign_in(client, "ada@example.com", "a wrong password!")  # the tenth failure
    locked = sign_in(client, "ada@example.com", PASSWORD)
    assert locked.status_code == 401 and "locked" in locked.text


def test_the_dashboard_session_is_identitys(client, api, world) -> None:
    sign_in(client, "ben@example.com", PASSWORD)
    token = client.cookies["orbin_session"]
    me = api.get("/v1/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["user"]["email"] == "ben@example.com"

    # A password change through the API ends the dashboard's session (another session).
    r = api.post("/v1/auth/signin", json={"email": "ben@example.com", "password": PASSWORD})
    other = r.json()["token"]
    r = api.post(
        "/v1/auth/password",
        json={"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"},
        headers={"authorization": f"Bearer {other}"},
    )
    assert r.status_code == 204, r.text
    assert_refused(client)

    # Signing out of the dashboard ends the session for the API too.
    sign_in(client, "ben@example.com", "a brand new passphrase")
    token = client.cookies["orbin_session"]
    assert client.post("/signout").status_code == 303
    assert api.get("/v1/me", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_removal_from_the_organization_closes_it_at_once(client, api, world) -> None:
    from streamlit_app import accounts
    from tenancy.db import session_scope
    from tenancy.identity.members import remove_member
    from tenancy.orgs import user_principal

    sign_in(client, "ben@example.com", PASSWORD)
    token = client.cookies["orbin_session"]
    assert accounts.is_member(token, world["org"])
    ben = accounts.current_user(token)
    with session_scope() as session:
        owner = user_principal(session, user_id=world["ada"], organization_id=world["org"])
        remove_member(session, owner, ben.id)
    assert not accounts.is_member(token, world["org"]), "the live socket closes"
    assert accounts.usable_memberships(ben) == []
    r = api.get("/v1/runs", headers={"authorization": f"Bearer {token}", "x-orbin-org": "alpha"})
    assert r.status_code == 404


def test_an_organization_requiring_mfa_sends_members_to_set_it_up(client, api, world) -> None:
    from streamlit_app import accounts
    from tenancy.db import session_scope
    from tenancy.models import Organization

    with session_scope() as session:
        org = session.get(Organization, world["org"])
        org.settings = {**org.settings, "requireMfa": True}
    assert sign_in(client, "ben@example.com", PASSWORD).status_code == 303
    token = client.cookies["orbin_session"]
    ben = accounts.current_user(token)
    [alpha] = accounts.usable_memberships(ben)
    assert alpha.refusal and "requires MFA" in alpha.refusal
    assert not accounts.is_member(token, world["org"])

    page = client.get("/mfa/setup")
    assert page.status_code == 200 and "alpha requires MFA" in page.text
    secret = re.search(r'<code id="mfa-secret">([A-Z2-7]+)</code>', page.text).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    bad = client.post("/mfa/setup", data={"code": "000000", "csrf": csrf})
    assert bad.status_code == 400 and secret in bad.text, "the same key, to try again"
    done = client.post("/mfa/setup", data={"code": pyotp.TOTP(secret).now(), "csrf": csrf})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([0-9a-f]+)</code></li>", done.text)
    assert len(codes) == 10
    assert accounts.is_member(token, world["org"])
    r = api.get("/v1/runs", headers={"authorization": f"Bearer {token}", "x-orbin-org": "alpha"})
    assert r.status_code == 200, "the API agrees"


def test_sign_ins_are_in_the_audit_trail(client, world) -> None:
    from tenancy.audit import read_audit_logs
    from tenancy.db import read_scope

    sign_in(client, "ben@example.com", "not the password")
    sign_in(client, "ben@example.com", PASSWORD)
    sign_in(client, "ada@example.com", PASSWORD)
    mfa_step(client, pyotp.TOTP(world["secret"]).now())
    with read_scope() as session:
        rows = [
            r
            for r in read_audit_logs(session, organization_id=world["org"])
            if r.action.startswith("user.sign")
        ]
        session.expunge_all()
    got = sorted(
        (r.action, (r.metadata_ or {}).get("method") or r.metadata_["reason"]) for r in rows
    )
    assert ("user.signin_failed", "wrong password") in got
    assert ("user.signed_in", "password") in got
    assert ("user.signed_in", "password+totp") in got
    assert all(r.ip_address == "testclient" for r in rows)
    text = repr([(r.metadata_, r.user_agent) for r in rows])
    assert PASSWORD not in text and world["secret"] not in text


def test_the_bare_sign_in_page_asks_for_the_code_too(world) -> None:
    """``streamlit run router.py`` without the server's gate: the same identity sign-in."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    router = str(Path(__file__).resolve().parents[2] / "streamlit_app" / "router.py")
    at = AppTest.from_file(router, default_timeout=30)
    at.run()
    at.text_input(key="login.email").input("ada@example.com")
    at.text_input(key="login.password").input(PASSWORD)
    at.button[0].click()
    at.run()
    assert "shell.user" not in at.session_state, "a right password alone opens nothing"
    at.text_input(key="login.code").input("000000")
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == ["That code is not valid."]
    at.text_input(key="login.code").input(pyotp.TOTP(world["secret"]).now())
    at.button[0].click()
    at.run()
    assert at.session_state["shell.user"].email == "ada@example.com"
    assert at.session_state["shell.token"].startswith("ses_")
