"""One public base URL for every URL Orbin hands out (issue 10: a workflow's webhookUrl said
127.0.0.1 while GET .../webhook said localhost, the request's Host). SQLite and PostgreSQL."""

from __future__ import annotations

import email
from urllib.parse import parse_qs, urlsplit

import pytest

from tenancy.config import reset_settings

HOOK = {
    "name": "Hook",
    "slug": "hook",
    "status": "active",
    "trigger": {"type": "webhook", "config": {}},
    "steps": [{"id": "a", "name": "A", "type": "action", "config": {"action": "transform"}}],
}


def _urls(api, key: str, host: str) -> tuple[str, str]:
    h = {"x-api-key": key, "host": host}
    wf = api.post("/v1/workflows", json=HOOK, headers=h).json()
    info = api.get(f"/v1/workflows/{wf['id']}/webhook", headers=h).json()
    return wf["webhookUrl"], info["url"]


def test_without_a_public_url_every_answer_names_the_bind_address(api, make_org) -> None:
    org = make_org("acme")
    listed, shown = _urls(api, org.key, "localhost:9999")  # the Host sent is not the base
    assert listed == shown
    assert listed.startswith("http://127.0.0.1:8000/v1/hooks/")


def test_orbin_public_url_is_the_base_of_webhook_and_oauth_urls(api, make_org, monkeypatch) -> None:
    monkeypatch.setenv("ORBIN_PUBLIC_URL", "https://orbin.example.com/")
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_CLIENT_ID", "cid")
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_CLIENT_SECRET", "csecret")
    reset_settings()
    org = make_org("acme")
    listed, shown = _urls(api, org.key, "localhost")
    assert listed == shown and listed.startswith("https://orbin.example.com/v1/hooks/")
    start = api.get(
        "/v1/integrations/oauth/slack/start",
        params={"name": "team"},
        headers={"x-api-key": org.key},
    )
    assert start.status_code == 200, start.text
    redirect = parse_qs(urlsplit(start.json()["authorizeUrl"]).query)["redirect_uri"][0]
    assert redirect == "https://orbin.example.com/v1/integrations/oauth/slack/callback"


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({"ORBIN_API_HOST": "0.0.0.0", "ORBIN_API_PORT": "18123"}, "http://127.0.0.1:18123"),
        ({"ORBIN_API_HOST": "10.1.2.3", "ORBIN_API_PORT": "8080"}, "http://10.1.2.3:8080"),
        ({"ORBIN_API_HOST": "::1"}, "http://[::1]:8000"),
        (
            {"ORBIN_PUBLIC_URL": "https://api.acme.test", "ORBIN_API_PORT": "1"},
            "https://api.acme.test",
        ),
    ],
)
def test_the_default_is_the_api_bind_address(monkeypatch, env, url) -> None:
    from tenancy.config import get_settings

    for k in ("ORBIN_PUBLIC_URL", "ORBIN_API_HOST", "ORBIN_API_PORT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_settings()
    try:
        assert get_settings().api_url == url
    finally:
        for k in env:
            monkeypatch.delenv(k)
        reset_settings()


def test_invitation_links_use_the_dashboard_url(api, monkeypatch) -> None:
    from tenancy.config import get_settings

    async def ensure_pool(slug: str, concurrency: int) -> bool:
        return True

    monkeypatch.setattr("orbin_flows.organizations.ensure_pool", ensure_pool)
    monkeypatch.setenv("ORBIN_DASHBOARD_URL", "https://app.acme.test/")
    reset_settings()
    pw = "correct horse battery staple 42"
    token = api.post(
        "/v1/auth/signup", json={"email": "o@example.com", "password": pw, "name": "O"}
    ).json()["token"]
    auth = {"authorization": f"Bearer {token}"}
    api.post("/v1/orgs", json={"name": "Acme", "slug": "acme"}, headers=auth)
    r = api.post(
        "/v1/invitations",
        json={"email": "bob@example.com", "role": "member"},
        headers={**auth, "x-orbin-org": "acme"},
    )
    assert r.status_code == 201, r.text
    (path,) = (get_settings().resolved_home / "outbox").glob("*.eml")
    body = email.message_from_bytes(path.read_bytes()).get_payload(decode=True).decode()
    assert "https://app.acme.test/accept-invitation?token=" in body
