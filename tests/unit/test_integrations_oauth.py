"""Connecting Slack by OAuth (Authlib, code + PKCE) against a local authorization server:
the authorize URL, the callback storing encrypted tokens, refresh before expiry, a refused
refresh putting the integration in error; then the token used through slack_sdk."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.support.providers import SLACK_TOKEN, Providers


@pytest.fixture
def providers():
    p = Providers()
    yield p
    p.close()


@pytest.fixture
def auth(monkeypatch, providers):
    server = OAuthServer(["xoxb-first-token-1", SLACK_TOKEN, "xoxb-third-token-3"], expires_in=30)
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", f"127.0.0.1:{server.port},127.0.0.1:{providers.port}")
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_AUTHORIZE_URL", f"{server.url}/authorize")
    monkeypatch.setenv("ORBIN_OAUTH_SLACK_TOKEN_URL", f"{server.url}/token")
    yield server
    server.close()


@pytest.fixture
def org(make_org):
    return make_org("acme")


def _h(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def _connect(api, org, name: str = "team") -> dict:
    resp = api.get(f"/v1/integrations/oauth/slack/start?name={name}", headers=_h(org.key))
    assert resp.status_code == 200, resp.text
    url = resp.json()["authorizeUrl"]
    q = parse_qs(urlsplit(url).query)
    assert q["client_id"] == [CLIENT_ID] and q["code_challenge_method"] == ["S256"]
    assert q["redirect_uri"][0].endswith("/v1/integrations/oauth/slack/callback")
    consent = httpx.get(url, follow_redirects=False)  # the user's browser at the provider
    assert consent.status_code == 302
    back = urlsplit(consent.headers["location"])
    done = api.get(f"{back.path}?{back.query}")
    assert done.status_code == 200, done.text
    return done.json()


def test_connect_stores_tokens_encrypted_and_never_answers_them(api, org, auth, providers):
    row = _connect(api, org)
    assert row["provider"] == "slack" and row["name"] == "team"
    assert row["credentialFields"] == ["botToken", "expiresAt", "refreshToken"]
    listed = api.get("/v1/integrations", headers=_h(org.key)).text
    assert "xoxb-first-token-1" not in listed and SLACK_TOKEN not in listed
    token_call = [r for r in auth.requests if r.get("grant_type") == "authorization_code"][0]
    assert token_call["code_verifier"]  # PKCE verifier sent with the code


def test_an_expiring_token_is_refreshed_before_use(api, org, auth, providers):
    iid = _connect(api, org)["id"]
    api.patch(
        f"/v1/integrations/{iid}",
        json={"config": {"baseUrl": providers.slack_url}},
        headers=_h(org.key) | {"content-type": "application/json"},
    )
    # The first token expires within the leeway: the test call refreshes it first.
    out = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key)).json()
    assert out["ok"] is True, out
    assert [r["grant_type"] for r in auth.requests if r["path"] == "/token"] == [
        "authorization_code",
        "refresh_token",
    ]
    assert providers.calls_to("auth.test")[-1].headers["authorization"] == f"Bearer {SLACK_TOKEN}"


def test_a_refused_refresh_marks_the_integration_error_with_the_reason(api, org, auth):
    iid = _connect(api, org)["id"]
    auth.refuse_refresh = True
    out = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key)).json()
    assert out["ok"] is False and "token refresh failed" in out["detail"]
    row = api.get(f"/v1/integrations/{iid}", headers=_h(org.key)).json()
    assert row["status"] == "error" and "refresh token revoked" in row["lastError"]


def test_a_tampered_or_foreign_state_is_refused(api, org, auth):
    resp = api.get("/v1/integrations/oauth/slack/callback?code=x&state=not-ours")
    assert resp.status_code == 422 and "state" in resp.text
    url = api.get("/v1/integrations/oauth/slack/start?name=t", headers=_h(org.key)).json()
    state = parse_qs(urlsplit(url["authorizeUrl"]).query)["state"][0]
    resp = api.get(f"/v1/integrations/oauth/github/callback?code=x&state={state}")
    assert resp.status_code == 422


def test_unconfigured_or_unknown_providers_are_a_422(api, org, monkeypatch):
    monkeypatch.delenv("ORBIN_OAUTH_GITHUB_CLIENT_ID", raising=False)
    resp = api.get("/v1/integrations/oauth/github/start?name=gh", headers=_h(org.key))
    assert resp.status_code == 422 and "ORBIN_OAUTH_GITHUB_CLIENT_ID" in resp.text
    resp = api.get("/v1/integrations/oauth/webhook/start?name=gh", headers=_h(org.key))
    assert resp.status_code == 422


def test_a_denied_consent_is_a_422_naming_the_providers_error(api, org, auth):
    url = api.get("/v1/integrations/oauth/slack/start?name=t", headers=_h(org.key)).json()
    state = parse_qs(urlsplit(url["authorizeUrl"]).query)["state"][0]
    resp = api.get(f"/v1/integrations/oauth/slack/callback?error=access_denied&state={state}")
    assert resp.status_code == 422 and "access_denied" in resp.text
