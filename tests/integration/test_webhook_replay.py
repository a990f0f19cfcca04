"""Replay protection keys on what the sender signed: a delivery replayed with new unsigned
headers (x-idempotency-key, webhook-id, X-GitHub-Delivery), a reordered signature header, a
Stripe event without an id, all start nothing new; a Stripe timestamp beyond the tolerance
in the future is refused."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_events_api import H
from tests.integration.test_webhooks import (
    _hmac,
    delivery,
    post_hook,
    secret_of,
    sign,
    webhook_workflow,
)


def _runs(api: TestClient, org, wf_id: str) -> list:
    return api.get("/v1/runs", params={"workflowId": wf_id}, headers=H(org)).json()["data"]


@pytest.mark.parametrize("provider", ["orbin", "github", "stripe", "slack"])
def test_a_replay_with_new_unsigned_headers_starts_nothing(
    api: TestClient, make_org, provider: str
) -> None:
    org = make_org("acme")
    wf = webhook_workflow(api, org, f"{provider}-hook", provider)
    secret = secret_of(api, org, wf["id"])
    body = delivery(provider, 1)
    headers = sign(provider, secret, body)
    first = post_hook(api, wf["id"], body, headers)
    assert first.status_code == 202, first.text
    for _ in range(3):
        replay = {
            **headers,
            "x-idempotency-key": uuid.uuid4().hex,
            "webhook-id": uuid.uuid4().hex,
            "x-github-delivery": str(uuid.uuid4()),
        }
        again = post_hook(api, wf["id"], body, replay)
        assert again.status_code == 202 and again.json() == first.json()
    assert len(_runs(api, org, wf["id"])) == 1


def test_a_reordered_orbin_signature_names_the_same_delivery(api: TestClient, make_org) -> None:
    org = make_org("acme")
    wf = webhook_workflow(api, org, "orbin-hook")
    secret = secret_of(api, org, wf["id"])
    body = delivery("orbin", 2)
    ts = int(time.time())
    good = _hmac(secret, f"{ts}.".encode() + body)
    for header in (f"t={ts},v1={good}", f"t={ts},v1={'0' * 64},v1={good}", f"v1={good},t={ts}"):
        h = {"content-type": "application/json", "orbin-signature": header}
        assert post_hook(api, wf["id"], body, h).status_code == 202
    assert len(_runs(api, org, wf["id"])) == 1


def test_stripe_without_an_id_and_from_the_future(api: TestClient, make_org) -> None:
    org = make_org("acme")
    wf = webhook_workflow(api, org, "billing", "stripe")
    secret = secret_of(api, org, wf["id"])
    body = json.dumps({"object": "event", "type": "invoice.paid", "data": {"object": {}}}).encode()
    headers = sign("stripe", secret, body)
    for _ in range(3):
        assert post_hook(api, wf["id"], body, headers).status_code == 202
    assert len(_runs(api, org, wf["id"])) == 1
    later = delivery("stripe", 3)
    resp = post_hook(api, wf["id"], later, sign("stripe", secret, later, int(time.time()) + 3600))
    assert resp.status_code == 401 and "5 minutes" in resp.json()["error"]["message"]


def test_rotation_refuses_a_grace_that_is_not_an_integer(api: TestClient, make_org) -> None:
    org = make_org("acme")
    for bad in (False, True, "10", 1.5, None):
        r = api.post("/v1/webhook-secret/rotate", json={"graceSeconds": bad}, headers=H(org))
        assert r.status_code == 422, (bad, r.status_code, r.text)
    ok = api.post("/v1/webhook-secret/rotate", json={"graceSeconds": 60}, headers=H(org))
    assert ok.status_code == 200 and ok.json()["secret"]
