"""The dashboard's gate, from outside over HTTP: sign-in page, session cookie, sign-out, and no
page or websocket for a visitor without a valid session."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

PASSWORD = "correct-horse-battery"

# The gate's logic does not depend on the backend; the same reads run on PostgreSQL in
# test_dashboard_pages.py. SQLite only here keeps the suite short.
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def _page(request) -> PlainTextResponse:
    return PlainTextResponse(f"org page {request.url.path}")


async def _stream(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text("streamlit")
    await ws.close()


@pytest.fixture
def member(database: str) -> str:
    """A user who belongs to an organization; returns the email."""
    from tenancy.db import session_scope
    from tenancy.orgs import add_member, create_organization, create_user

    with session_scope() as session:
        org = create_organization(session, name="Alpha", slug="alpha")
        user = create_user(session, email="alice@example.com", name="Alice", password=PASSWORD)
        add_member(session, organization_id=org.id, user_id=user.id, role="member")
        create_user(session, email="loner@example.com", name="Loner", password=PASSWORD)
    return "alice@example.com"


@pytest.fixture
def client(member: str):
    """The gate and sign-in routes in front of stand-ins for Streamlit's page and websocket."""
    from streamlit_app import server

    app = Starlette(
        routes=[
            *server.routes(),
            Route("/", _page),
            Route("/runs", _page),
            Route("/static/app.js", _page),
            WebSocketRoute("/_stcore/stream", _stream),
        ],
        middleware=server.middleware(),
    )
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, email: str, password: str, next_url: str = "/"):
    form = client.get("/signin").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return client.post(
        "/signin",
        data={"email": email, "password": password, "csrf": csrf, "next": next_url},
    )


def stream(client: TestClient):
    """Streamlit's websocket, with the browser's cookies (the test client's jar has no ws://)."""
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return client.websocket_connect("/_stcore/stream", headers={"cookie": cookie})


def set_session(client: TestClient, token: str) -> None:
    client.cookies.clear()
    client.cookies.set("orbin_session", token)


def assert_refused(client: TestClient) -> None:
    page = client.get("/runs?run=1")
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=%2Fruns%3Frun%3D1"
    with pytest.raises(WebSocketDisconnect), stream(client) as ws:
        ws.receive_text()


def test_without_a_session_pages_redirect_and_the_websocket_is_refused(client) -> None:
    assert_refused(client)
    assert client.post("/runs").status_code == 401
    assert client.get("/static/app.js").status_code == 200, "the script bundle is public"
    signin = client.get("/signin").text
    assert '<link rel="modulepreload" crossorigin href="/static/js/index.' in signin


def test_wrong_password_gets_no_session(client, member: str) -> None:
    resp = sign_in(client, member, "wrong-password")
    assert resp.status_code == 401
    assert "Wrong email or password." in resp.text
    assert "orbin_session" not in resp.headers.get("set-cookie", "")
    assert_refused(client)


def test_right_password_opens_pages_and_the_websocket(client, member: str) -> None:
    resp = sign_in(client, member, PASSWORD, next_url="/runs?run=42")
    assert resp.status_code == 303 and resp.headers["location"] == "/runs?run=42"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith("orbin_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert client.get("/runs").text == "org page /runs"
    with stream(client) as ws:
        assert ws.receive_text() == "streamlit"


def test_sign_out_ends_the_session(client, member: str) -> None:
    sign_in(client, member, PASSWORD)
    token = client.cookies["orbin_session"]
    resp = client.post("/signout")
    assert resp.status_code == 303 and resp.headers["location"] == "/signin?signed_out=1"
    assert_refused(client)
    set_session(client, token)  # the old cookie, kept by someone: ended server-side
    assert_refused(client)
    assert "You signed out." in client.get("/signin?signed_out=1").text


def test_forged_or_stale_sessions_are_refused(client, member: str) -> None:
    from sqlalchemy import update

    from tenancy.db import session_scope
    from tenancy.models import UserSession

    sign_in(client, member, PASSWORD)
    good = client.cookies["orbin_session"]
    assert good.startswith("ses_"), "the cookie holds identity's session token"
    set_session(client, good)
    assert client.get("/runs").status_code == 200
    set_session(client, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert_refused(client)
    with session_scope() as session:  # the server-side session expires
        session.execute(update(UserSession).values(expires_at=1))
    set_session(client, good)
    assert_refused(client)


def test_a_new_password_ends_existing_sessions(client, member: str) -> None:
    from tenancy.db import session_scope
    from tenancy.identity.accounts import set_password

    sign_in(client, member, PASSWORD)
    assert client.get("/runs").status_code == 200
    with session_scope() as session:  # an operator's reset (orbin user reset-password)
        set_password(session, member, "another password entirely")
    assert_refused(client)
    assert sign_in(client, member, PASSWORD).status_code == 401
    assert sign_in(client, member, "another password entirely").status_code == 303


def test_sign_in_form_needs_its_csrf_token(client, member: str) -> None:
    resp = client.post(
        "/signin", data={"email": member, "password": PASSWORD, "csrf": "guess", "next": "/"}
    )
    assert resp.status_code == 400 and "expired" in resp.text
    assert "orbin_session" not in resp.headers.get("set-cookie", "")


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_next_never_leaves_the_site(client, member: str, target: str) -> None:
    resp = sign_in(client, member, PASSWORD, next_url=target)
    assert resp.status_code == 303 and resp.headers["location"] == "/"


def test_user_without_an_organization_is_refused(client) -> None:
    resp = sign_in(client, "loner@example.com", PASSWORD)
    assert resp.status_code == 403 and "belongs to no organization" in resp.text
    assert "orbin_session" not in resp.headers.get("set-cookie", "")


def test_guessing_passwords_locks_the_account_for_everyone(client, member: str) -> None:
    """The dashboard counts failures where the API does (identity's lockout)."""
    from fastapi.testclient import TestClient

    from ingest_api import create_app

    codes = [sign_in(client, member, f"guess-{i}").status_code for i in range(10)]
    assert codes == [401] * 10
    locked = sign_in(client, member, PASSWORD)
    assert locked.status_code == 401 and "locked" in locked.text, "even the right one, for now"
    assert "orbin_session" not in locked.headers.get("set-cookie", "")
    with TestClient(create_app()) as api:
        r = api.post("/v1/auth/signin", json={"email": member, "password": PASSWORD})
    assert r.status_code == 401 and r.json()["error"]["code"] == "account_locked"


def test_sign_in_attempts_are_throttled_per_email(client, member: str) -> None:
    for _ in range(20):
        assert sign_in(client, member, PASSWORD).status_code == 303
    resp = sign_in(client, member, PASSWORD)
    assert resp.status_code == 429 and "Too many attempts" in resp.text
