"""Salesforce through simple-salesforce against a local HTTPS server speaking its REST API:
connection test (limits), createRecord, query, the provider's own errors."""

from __future__ import annotations

import pytest

from orbin_flows.actions import FatalStepError, get_action
from orbin_flows.actions.base import StepContext
from tests.support.salesforce import SALESFORCE_TOKEN, SalesforceServer


@pytest.fixture
def sf(monkeypatch):
    server = SalesforceServer()
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)
    yield server
    server.close()


@pytest.fixture
def org(make_org):
    return make_org("acme")


def _h(key: str) -> dict[str, str]:
    return {"x-api-key": key, "content-type": "application/json"}


def _create(api, org, sf, token: str = SALESFORCE_TOKEN, name: str = "crm"):
    body = {
        "provider": "salesforce",
        "name": name,
        "config": {"instanceUrl": sf.url},
        "credentials": {"accessToken": token},
    }
    return api.post("/v1/integrations", json=body, headers=_h(org.key))


def test_connection_test_reads_the_limits(api, org, sf) -> None:
    resp = _create(api, org, sf)
    assert resp.status_code == 201 and SALESFORCE_TOKEN not in resp.text
    out = api.post(f"/v1/integrations/{resp.json()['id']}/test", headers=_h(org.key)).json()
    assert out == {"ok": True, "detail": "API requests remaining today: 14998"}
    assert sf.calls[-1][1] == "/services/data/v59.0/limits/"


def test_an_expired_token_tests_false_and_marks_error(api, org, sf) -> None:
    iid = _create(api, org, sf, token="00Dexpired-token", name="old").json()["id"]
    out = api.post(f"/v1/integrations/{iid}/test", headers=_h(org.key)).json()
    assert out["ok"] is False and "INVALID_SESSION_ID" in out["detail"]
    assert api.get(f"/v1/integrations/{iid}", headers=_h(org.key)).json()["status"] == "error"


def test_instance_url_must_be_https(api, org, sf) -> None:
    body = {
        "provider": "salesforce",
        "name": "crm",
        "config": {"instanceUrl": "http://acme.my.salesforce.com"},
        "credentials": {"accessToken": SALESFORCE_TOKEN},
    }
    resp = api.post("/v1/integrations", json=body, headers=_h(org.key))
    assert resp.status_code == 422 and "config.instanceUrl" in resp.text


async def _run(org, config: dict):
    cls = get_action(config["action"])
    ctx = StepContext(org.id, org.slug, "run-1", "step-1", 1)
    return await cls().run(cls.Config.model_validate(config), ctx)


async def test_create_record_and_query(api, org, sf) -> None:
    assert _create(api, org, sf).status_code == 201
    out = await _run(
        org,
        {
            "action": "salesforce.createRecord",
            "integration": "crm",
            "object": "Contact",
            "fields": {"LastName": "Lovelace", "Email": "ada@example.com"},
        },
    )
    assert out == {"id": "003TEST0001", "success": True}
    method, path, body = sf.calls[-1]
    assert (method, path) == ("POST", "/services/data/v59.0/sobjects/Contact/")
    assert body == {"LastName": "Lovelace", "Email": "ada@example.com"}
    found = await _run(
        org,
        {
            "action": "salesforce.query",
            "integration": "crm",
            "soql": "SELECT Id, LastName FROM Contact",
        },
    )
    assert found["totalSize"] == 1
    assert found["records"][0]["LastName"] == "Lovelace"
    assert found["records"][0]["Soql"] == "SELECT Id, LastName FROM Contact"
    with pytest.raises(FatalStepError, match="REQUIRED_FIELD_MISSING"):
        await _run(
            org,
            {
                "action": "salesforce.createRecord",
                "integration": "crm",
                "object": "Contact",
                "fields": {"Email": "x@example.com"},
            },
        )
