"""Single sign-on into the dashboard, over HTTP: the sign-in page's SSO form -> the API's
login -> the provider -> the API's callback -> the dashboard's one-time code, redeemable once
and only by the browser that started it. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.unit.test_dashboard_server import _page
from tests.unit.test_sso import acme, allow_provider, idp  # noqa: F401 - shared fixtures


@pytest.fixture
def dash(api):
    from streamlit_app import server

    app = Starlette(
        routes=[*server.routes(), Route("/", _page), Route("/runs", _page)],
        middleware=server.middleware(),
    )
    with TestClient(app, base_url="http://127.0.0.1", follow_redirects=False) as c:
        yield c


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def start(dash: TestClient, api, slug: str = "acme", next_url: str = "/runs") -> str:
    """Through the SSO form and the provider; returns where the API sends the browser."""
    page = dash.get("/signin").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = dash.post("/signin/sso", data={"org": slug, "csrf": csrf, "next": next_url})
    assert r.status_code == 303, r.text
    assert "/v1/auth/sso/acme/login?client=dashboard&bind=" in r.headers["location"]
    r = api.get(path_of(r.headers["location"]), follow_redirects=False)
    assert r.status_code == 302, r.text
    back = httpx.get(r.headers["location"], follow_redirects=False)
    r = api.get(path_of(back.headers["location"]), follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"]


def test_sso_signs_in_to_the_dashboard_once(dash, api, acme) -> None:  # noqa: F811
    to_dashboard = start(dash, api)
    assert to_dashboard.startswith("http://127.0.0.1:8501/sso/complete?code=")
    r = dash.get(path_of(to_dashboard))
    assert r.status_code == 303 and r.headers["location"] == "/runs"
    token = dash.cookies["orbin_session"]
    assert dash.get("/runs").status_code == 200
    me = api.get("/v1/me", headers={"authorization": f"Bearer {token}"}).json()
    assert me["user"]["email"] == "ada@acme.test"

    replay = dash.get(path_of(to_dashboard))
    assert replay.status_code == 303
    assert replay.headers["location"] == "/signin?sso_error=sso_state_invalid"
    page = dash.get(replay.headers["location"])
    assert page.status_code == 401 and "took too long or was started elsewhere" in page.text


def test_the_code_works_only_in_the_browser_that_started(dash, api, acme) -> None:  # noqa: F811
    to_dashboard = start(dash, api)
    dash.cookies.clear()  # someone else's browser, handed the link
    r = dash.get(path_of(to_dashboard))
    assert r.headers["location"] == "/signin?sso_error=sso_state_invalid"
    assert "orbin_session" not in r.headers.get("set-cookie", "")


def test_a_refused_sign_in_comes_back_with_its_reason(dash, api, acme, idp) -> None:  # noqa: F811
    idp.control(user={"sub": "u-eve", "email": "eve@evil.test"})
    to_dashboard = start(dash, api)
    assert to_dashboard.endswith("/signin?sso_error=sso_domain_not_allowed")
    page = dash.get(path_of(to_dashboard))
    assert "Your e-mail&#x27;s domain may not sign in" in page.text
    odd = dash.get("/signin?sso_error=%3Cscript%3E")  # never text from the URL
    assert "<script>" not in odd.text and "Single sign-on did not work" in odd.text
