"""Integrations over the API, against a local server speaking Slack's and GitHub's protocols
through slack_sdk and PyGithub: created, tested, changed, isolated; credentials never shown."""

from __future__ import annotations

import json

import pytest

from tests.support.providers import GITHUB_TOKEN, SLACK_TOKEN, Providers

SIGNING = "whsec-unit-test-secret"
SECRETS = (SLACK_TOKEN, GITHUB_TOKEN, SIGNING)


@pytest.fixture
def providers(monkeypatch):
    p = Providers()
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", f"127.0.0.1:{p.port}")
    yield p
    p.close()


@pytest.fixture
def org(make_org):
    return make_org("acme")


def _h(key: str) -> dict[str, str]:
    return {"x-api-key": key, "content-type": "application/json"}


def _bodies(p: Providers) -> dict[str, dict]:
    return {
        "hook": {
            "provider": "webhook",
            "name": "hook",
            "config": {"url": f"{p.url}/hook"},
            "credentials": {"signingSecret": SIGNING},
        },
        "team": {
            "provider": "slack",
            "name": "team",
            "config": {"baseUrl": p.slack_url},
            "credentials": {"botToken": SLACK_TOKEN},
        },
        "gh": {
            "provider": "github",
            "name": "gh",
            "config": {"baseUrl": p.github_url},
            "credentials": {"token": GITHUB_TOKEN},
        },
    }


def _create_all(api, org, p) -> dict[str, str]:
    ids = {}
    for name, body in _bodies(p).items():
        resp = api.post("/v1/integrations", json=body, headers=_h(org.key))
        assert resp.status_code == 201, resp.text
        assert not any(s in resp.text for s in SECRETS)
        ids[name] = resp.json()["id"]
    return ids


def test_create_list_and_test_each_provider_without_showing_a_credential(
    api, org, providers
) -> None:
    ids = _create_all(api, org, providers)
    listed = api.get("/v1/integrations", headers=_h(org.key))
    assert listed.status_code == 200
    assert {i["name"] for i in listed.json()["data"]} == {"hook", "team", "gh"}
    assert not any(s in listed.text for s in SECRETS)
    assert listed.json()["data"][1]["credentialFields"] == ["botToken"]
    for name, iid in ids.items():
        resp = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key))
        assert resp.status_code == 200
        assert resp.json()["ok"] is True, (name, resp.json())
    assert "Test Team" in api.post(f"/v1/integrations/{ids['team']}/test", headers=_h(org.key)).text
    assert providers.calls_to("/user")[-1].headers["authorization"] == f"token {GITHUB_TOKEN}"
    ping = providers.calls_to("/hook")[-1]
    assert ping.headers["orbin-signature"].startswith("t=")
    one = api.get(f"/v1/integrations/{ids['team']}", headers=_h(org.key)).json()
    assert one["lastUsedAt"] is not None and one["status"] == "active"


def test_a_refused_token_tests_false_and_marks_the_integration_error(api, org, providers) -> None:
    body = _bodies(providers)["team"] | {"name": "bad", "credentials": {"botToken": "xoxb-nope1"}}
    iid = api.post("/v1/integrations", json=body, headers=_h(org.key)).json()["id"]
    resp = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key))
    assert resp.status_code == 200
    assert resp.json() == {"ok": False, "detail": "Slack auth.test: invalid_auth"}
    row = api.get(f"/v1/integrations/{iid}", headers=_h(org.key)).json()
    assert row["status"] == "error" and "invalid_auth" in row["lastError"]
    fixed = api.patch(
        f"/v1/integrations/{iid}",
        json={"credentials": {"botToken": SLACK_TOKEN}},
        headers=_h(org.key),
    )
    assert fixed.status_code == 200 and fixed.json()["status"] == "active"
    assert api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key)).json()["ok"] is True


def test_github_bad_credentials_answer_the_providers_message(api, org, providers) -> None:
    body = _bodies(providers)["gh"] | {"credentials": {"token": "ghp_wrongwrong"}}
    iid = api.post("/v1/integrations", json=body, headers=_h(org.key)).json()["id"]
    out = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key)).json()
    assert out["ok"] is False and "401 Bad credentials" in out["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "fax"}, "provider"),
        ({"config": {}}, "config.url"),
        ({"config": {"url": "ftp://x"}}, "config.url"),
        ({"credentials": {}}, "credentials.signingSecret"),
        ({"credentials": {"signingSecret": "short"}}, "credentials.signingSecret"),
        ({"name": "no spaces"}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_a_422_naming_the_field_without_echoing_secrets(
    api, org, providers, change, field
) -> None:
    body = _bodies(providers)["hook"] | change
    resp = api.post("/v1/integrations", json=body, headers=_h(org.key))
    assert resp.status_code == 422, resp.text
    assert field in json.dumps(resp.json()["error"])
    assert "short" not in resp.text


def test_a_slack_token_of_the_wrong_shape_is_refused(api, org, providers) -> None:
    body = _bodies(providers)["team"] | {"credentials": {"botToken": "not-a-slack-token"}}
    resp = api.post("/v1/integrations", json=body, headers=_h(org.key))
    assert resp.status_code == 422 and "credentials.botToken" in resp.text
    assert "not-a-slack-token" not in resp.text


def test_names_are_unique_per_organization(api, org, make_org, providers) -> None:
    body = _bodies(providers)["hook"]
    assert api.post("/v1/integrations", json=body, headers=_h(org.key)).status_code == 201
    assert api.post("/v1/integrations", json=body, headers=_h(org.key)).status_code == 409
    other = make_org("other")
    assert api.post("/v1/integrations", json=body, headers=_h(other.key)).status_code == 201


def test_another_organizations_integration_is_a_404(api, org, make_org, providers) -> None:
    iid = _create_all(api, org, providers)["gh"]
    other = make_org("other")
    for method, path in (
        ("GET", f"/v1/integrations/{iid}"),
        ("PATCH", f"/v1/integrations/{iid}"),
        ("DELETE", f"/v1/integrations/{iid}"),
        ("POST", f"/v1/integrations/{iid}/test"),
    ):
        resp = api.request(method, path, json={"name": "x"}, headers=_h(other.key))
        assert resp.status_code == 404, (method, resp.text)
    assert api.get("/v1/integrations", headers=_h(other.key)).json()["data"] == []
    assert api.get(f"/v1/integrations/{iid}", headers=_h(org.key)).status_code == 200


def test_only_a_secret_key_manages_integrations(api, make_org, providers) -> None:
    ro = make_org("ro", key_type="restricted", permissions=["workflows:read"])
    resp = api.post("/v1/integrations", json=_bodies(providers)["hook"], headers=_h(ro.key))
    assert resp.status_code == 403
    assert api.get("/v1/integrations", headers=_h(ro.key)).status_code == 200


def test_delete_then_gone(api, org, providers) -> None:
    iid = _create_all(api, org, providers)["hook"]
    assert api.delete(f"/v1/integrations/{iid}", headers=_h(org.key)).status_code == 204
    assert api.get(f"/v1/integrations/{iid}", headers=_h(org.key)).status_code == 404


def test_internal_addresses_are_refused_without_an_egress_allowance(
    api, org, providers, monkeypatch
) -> None:
    iid = _create_all(api, org, providers)["hook"]
    monkeypatch.delenv("ORBIN_EGRESS_ALLOW")
    out = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key)).json()
    assert out["ok"] is False and "internal address" in out["detail"]
    assert providers.calls_to("/hook") == []


def test_credentials_are_encrypted_at_rest_and_listed_for_redaction(api, org, providers) -> None:
    _create_all(api, org, providers)
    from tenancy.db import session_scope
    from tenancy.integrations import read_integrations, secret_values

    with session_scope() as session:
        rows = read_integrations(session, organization_id=org.id)
        assert rows and all(not any(s in r.credentials for s in SECRETS) for r in rows)
        assert set(secret_values(session, org.id)) == set(SECRETS)


def test_a_workflow_naming_a_missing_or_wrong_integration_is_a_422(api, org, providers) -> None:
    _create_all(api, org, providers)

    def spec(action: str, integration: str) -> dict:
        return {
            "name": "W",
            "slug": f"w-{action.replace('.', '-').lower()}-{integration}",
            "trigger": {"type": "manual"},
            "steps": [
                {
                    "id": "a",
                    "name": "A",
                    "type": "action",
                    "config": {
                        "action": action,
                        "integration": integration,
                        "channel": "#x",
                        "text": "hi",
                    },
                }
            ],
        }

    ok = api.post("/v1/workflows", json=spec("slack.postMessage", "team"), headers=_h(org.key))
    assert ok.status_code == 201, ok.text
    missing = api.post("/v1/workflows", json=spec("slack.postMessage", "nope"), headers=_h(org.key))
    assert missing.status_code == 422
    assert missing.json()["error"]["details"][0]["path"] == "steps[0].config.integration"
    wrong = api.post("/v1/workflows", json=spec("slack.postMessage", "gh"), headers=_h(org.key))
    assert wrong.status_code == 422 and "is a github integration" in wrong.text


def test_secrets_rotate_reencrypts_credentials_under_the_newest_key(
    api, org, providers, monkeypatch
) -> None:
    from cryptography.fernet import Fernet
    from typer.testing import CliRunner

    from orbin_cli.main import app
    from tenancy import config, crypto
    from tenancy.db import session_scope
    from tenancy.integrations import credentials_of, read_integrations

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("ORBIN_SECRET_KEY", old)
    config.reset_settings()
    crypto.reset()
    _create_all(api, org, providers)
    monkeypatch.setenv("ORBIN_SECRET_KEY", f"{new},{old}")
    config.reset_settings()
    crypto.reset()
    result = CliRunner().invoke(app, ["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("ORBIN_SECRET_KEY", new)  # the old key is gone: all still readable
    config.reset_settings()
    crypto.reset()
    with session_scope() as session:
        rows = read_integrations(session, organization_id=org.id)
        assert {credentials_of(r).get("botToken") for r in rows} >= {SLACK_TOKEN}
    crypto.reset()


def test_stripe_integration_tests_its_balance(api, org, providers) -> None:
    from tests.support.providers import STRIPE_KEY

    body = {
        "provider": "stripe",
        "name": "pay",
        "config": {"apiBase": providers.stripe_url},
        "credentials": {"secretKey": STRIPE_KEY},
    }
    resp = api.post("/v1/integrations", json=body, headers=_h(org.key))
    assert resp.status_code == 201 and STRIPE_KEY not in resp.text
    out = api.post(f"/v1/integrations/{resp.json()['id']}/test", headers=_h(org.key)).json()
    assert out == {"ok": True, "detail": "balance available: 1200 usd"}
    bad = body | {"name": "bad", "credentials": {"secretKey": "sk_test_wrong000"}}
    iid = api.post("/v1/integrations", json=bad, headers=_h(org.key)).json()["id"]
    out = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key)).json()
    assert out["ok"] is False and "Invalid API Key" in out["detail"]
    assert api.get(f"/v1/integrations/{iid}", headers=_h(org.key)).json()["status"] == "error"
