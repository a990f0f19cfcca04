"""Webhook triggers over HTTP: each provider's signature scheme, valid, wrong, stale and across
a secret rotation; deliveries becoming events and runs; tenant isolation."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from orbin_flows.signatures import orbin_header
from tests.conftest import OrgWithKey
from tests.integration.test_events_api import H, add_key, make_workflow


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def delivery(provider: str, n: int) -> bytes:
    body: dict[str, Any] = {
        "orbin": {"type": "order.paid", "data": {"n": n}},
        "github": {"ref": "refs/heads/main", "n": n},
        "stripe": {
            "id": f"evt_{n}_{uuid.uuid4().hex[:6]}",
            "object": "event",
            "type": "invoice.paid",
            "data": {"object": {"id": "in_1", "n": n}},
        },
        "slack": {
            "type": "event_callback",
            "event_id": f"Ev{n}{uuid.uuid4().hex[:6]}",
            "event": {"type": "app_mention", "text": f"hi {n}"},
        },
    }[provider]
    return json.dumps(body).encode()


def sign(provider: str, secret: str, body: bytes, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    headers = {"content-type": "application/json"}
    if provider == "orbin":
        headers["orbin-signature"] = orbin_header(secret, body, ts)
    elif provider == "github":
        headers["x-hub-signature-256"] = "sha256=" + _hmac(secret, body)
        headers["x-github-event"] = "push"
        headers["x-github-delivery"] = str(uuid.uuid4())
    elif provider == "stripe":
        headers["stripe-signature"] = f"t={ts},v1={_hmac(secret, f'{ts}.'.encode() + body)}"
    else:
        headers["x-slack-request-timestamp"] = str(ts)
        headers["x-slack-signature"] = "v0=" + _hmac(secret, f"v0:{ts}:".encode() + body)
    return headers


EXPECTED_TYPE = {
    "orbin": "order.paid",
    "github": "github.push",
    "stripe": "stripe.invoice.paid",
    "slack": "slack.app_mention",
}


def webhook_workflow(
    api: TestClient, org: OrgWithKey, slug: str, provider: str = "orbin", status: str = "active"
) -> dict:
    trigger = {"type": "webhook", "config": {"provider": provider}}
    return make_workflow(api, org, slug, trigger, status=status)


def secret_of(api: TestClient, org: OrgWithKey, workflow_id: str) -> str:
    resp = api.get(f"/v1/workflows/{workflow_id}/webhook", headers=H(org))
    assert resp.status_code == 200, resp.text
    return resp.json()["secret"]


def post_hook(api: TestClient, workflow_id: str, body: bytes, headers: dict[str, str]) -> Any:
    return api.post(f"/v1/hooks/{workflow_id}", content=body, headers=headers)


@pytest.mark.parametrize("provider", ["orbin", "github", "stripe", "slack"])
def test_each_scheme_valid_wrong_stale_and_rotated(
    api: TestClient, make_org, provider: str
) -> None:
    from sqlalchemy import update

    from tenancy.db import session_scope
    from tenancy.models import Organization

    org = make_org("acme")
    wf = webhook_workflow(api, org, "hook", provider)
    assert wf["webhookUrl"].endswith(f"/v1/hooks/{wf['id']}")
    info = api.get(f"/v1/workflows/{wf['id']}/webhook", headers=H(org)).json()
    assert info["url"].endswith(f"/v1/hooks/{wf['id']}") and info["provider"] == provider
    old = info["secret"]

    body = delivery(provider, 1)
    resp = post_hook(api, wf["id"], body, sign(provider, old, body))
    assert resp.status_code == 202, resp.text
    [run_id] = resp.json()["runIds"]
    run = api.get(f"/v1/runs/{run_id}", headers=H(org)).json()
    assert run["triggerType"] == "webhook" and run["workflowId"] == wf["id"]
    # The id the delivery was answered with is the one the events API takes (it was the
    # replay-protection key, orbin:<wf>:sig:..., which it did not).
    answered = resp.json()["id"]
    assert resp.json()["eventId"] == answered == run["eventId"]
    assert resp.json()["idempotencyKey"].startswith(f"{provider}:{wf['id']}:")
    got = api.get(f"/v1/events/{answered}", headers=H(org))
    assert got.status_code == 200, got.text
    event = got.json()
    assert event["source"] == provider and event["type"] == EXPECTED_TYPE[provider]
    assert event["runIds"] == [run_id] and event["runs"][0]["workflowId"] == wf["id"]
    assert event["idempotencyKey"] == resp.json()["idempotencyKey"]
    assert api.post(f"/v1/events/{answered}/replay", headers=H(org)).status_code == 200

    body = delivery(provider, 2)
    wrong = post_hook(api, wf["id"], body, sign(provider, "whsec_wrong", body))
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthenticated"
    assert "does not match" in wrong.json()["error"]["message"]
    if provider != "github":  # GitHub signs no timestamp (replays: by delivery id, below)
        stale = post_hook(api, wf["id"], body, sign(provider, old, body, int(time.time()) - 600))
        assert stale.status_code == 401 and "5 minutes" in stale.json()["error"]["message"]

    rotated = api.post("/v1/webhook-secret/rotate", json={"graceSeconds": 3600}, headers=H(org))
    assert rotated.status_code == 200, rotated.text
    assert (
        rotated.json()["secret"] and rotated.json()["previousSecretValidUntil"] > time.time() * 1000
    )
    new = secret_of(api, org, wf["id"])
    assert new != old
    for secret, n in ((old, 3), (new, 4)):
        body = delivery(provider, n)
        assert post_hook(api, wf["id"], body, sign(provider, secret, body)).status_code == 202

    with session_scope() as session:  # the grace period ends
        session.execute(
            update(Organization)
            .where(Organization.id == org.id)
            .values(webhook_secret_prev_until=int(time.time() * 1000) - 1)
        )
    body = delivery(provider, 5)
    after = post_hook(api, wf["id"], body, sign(provider, old, body))
    assert after.status_code == 401 and "does not match" in after.json()["error"]["message"]
    assert post_hook(api, wf["id"], body, sign(provider, new, body)).status_code == 202
    runs = api.get("/v1/runs", params={"workflowId": wf["id"]}, headers=H(org)).json()["data"]
    assert len(runs) == 5, "only the four verified deliveries (and one replay) started runs"


def test_a_replayed_delivery_starts_nothing_new(api: TestClient, make_org) -> None:
    org = make_org("acme")
    orbin = webhook_workflow(api, org, "orbin-hook")
    github = webhook_workflow(api, org, "gh-hook", "github")
    for wf, provider in ((orbin, "orbin"), (github, "github")):
        secret = secret_of(api, org, wf["id"])
        body = delivery(provider, 1)
        headers = sign(provider, secret, body)
        first = post_hook(api, wf["id"], body, headers).json()
        again = post_hook(api, wf["id"], body, headers)
        assert again.status_code == 202 and again.json() == first
    events = api.get("/v1/events", headers=H(org)).json()["data"]
    assert len(events) == 2


def test_provider_handshakes_are_answered_and_not_stored(api: TestClient, make_org) -> None:
    org = make_org("acme")
    slack = webhook_workflow(api, org, "slack-hook", "slack")
    github = webhook_workflow(api, org, "gh-hook", "github")
    body = json.dumps({"type": "url_verification", "challenge": "c-123"}).encode()
    resp = post_hook(api, slack["id"], body, sign("slack", secret_of(api, org, slack["id"]), body))
    assert resp.status_code == 200 and resp.json() == {"challenge": "c-123"}
    body = json.dumps({"zen": "Keep it simple", "hook_id": 1}).encode()
    headers = {**sign("github", secret_of(api, org, github["id"]), body), "x-github-event": "ping"}
    assert post_hook(api, github["id"], body, headers).status_code == 200
    form = b"command=%2Fdeploy&text=prod&user_id=U1"
    headers = {
        **sign("slack", secret_of(api, org, slack["id"]), form),
        "content-type": "application/x-www-form-urlencoded",
    }
    command = post_hook(api, slack["id"], form, headers)
    assert command.status_code == 202, command.text
    events = api.get("/v1/events", headers=H(org)).json()["data"]
    assert [(e["type"], e["data"]["text"]) for e in events] == [("slack.command", "prod")]


def test_stripe_with_the_secret_stripe_issued(api: TestClient, make_org) -> None:
    org = make_org("acme")
    wf = webhook_workflow(api, org, "billing", "stripe")
    derived = secret_of(api, org, wf["id"])
    issued = "whsec_" + uuid.uuid4().hex
    resp = api.put(f"/v1/workflows/{wf['id']}/webhook", json={"secret": issued}, headers=H(org))
    assert resp.status_code == 200, resp.text
    assert resp.json()["secretSource"] == "provider" and resp.json()["secret"] is None
    body = delivery("stripe", 1)
    assert post_hook(api, wf["id"], body, sign("stripe", issued, body)).status_code == 202
    assert post_hook(api, wf["id"], body, sign("stripe", derived, body)).status_code == 401
    api.put(f"/v1/workflows/{wf['id']}/webhook", json={"secret": None}, headers=H(org))
    body = delivery("stripe", 2)
    assert post_hook(api, wf["id"], body, sign("stripe", derived, body)).status_code == 202


def test_a_paused_workflow_keeps_its_deliveries_as_dead_letters(api: TestClient, make_org) -> None:
    org = make_org("acme")
    wf = webhook_workflow(api, org, "hook", status="paused")
    body = delivery("orbin", 1)
    resp = post_hook(api, wf["id"], body, sign("orbin", secret_of(api, org, wf["id"]), body))
    assert resp.status_code == 202 and resp.json()["runIds"] == []
    [dead] = api.get("/v1/dead-letters", headers=H(org)).json()["data"]
    assert "paused" in dead["error"]
    retry = api.post(f"/v1/dead-letters/{dead['id']}/retry", headers=H(org))
    assert retry.status_code == 409 and "activate it" in retry.json()["error"]["message"]
    api.post(f"/v1/workflows/{wf['id']}/activate", headers=H(org))
    retried = api.post(f"/v1/dead-letters/{dead['id']}/retry", headers=H(org)).json()
    assert len(retried["startedRunIds"]) == 1
    run = api.get(f"/v1/runs/{retried['startedRunIds'][0]}", headers=H(org)).json()
    assert run["triggerType"] == "webhook" and run["triggerData"]["data"] == {"n": 1}


def test_rotation_needs_a_secret_key(api: TestClient, make_org) -> None:
    org = make_org("acme")
    for key in (add_key(org, "publishable"), add_key(org, "restricted", ["workflows:write"])):
        resp = api.post("/v1/webhook-secret/rotate", headers=H(key))
        assert resp.status_code == 403, resp.text
    bad = api.post("/v1/webhook-secret/rotate", json={"graceSeconds": -1}, headers=H(org))
    assert bad.status_code == 422
    ok = api.post("/v1/webhook-secret/rotate", headers=H(org))
    assert ok.status_code == 200 and len(ok.json()["secret"]) >= 32


def test_webhooks_are_tenant_scoped_and_unknown_addresses_404(api: TestClient, make_org) -> None:
    a, b = make_org("acme"), make_org("other")
    wf_a = webhook_workflow(api, a, "hook")
    wf_b = webhook_workflow(api, b, "hook")
    body = delivery("orbin", 1)
    never_read = post_hook(api, wf_a["id"], body, sign("orbin", "whsec_x", body))
    assert (
        never_read.status_code == 401 and "no secret yet" in never_read.json()["error"]["message"]
    )
    secret_a = secret_of(api, a, wf_a["id"])
    secret_b = secret_of(api, b, wf_b["id"])
    assert api.get(f"/v1/workflows/{wf_a['id']}/webhook", headers=H(b)).status_code == 404
    resp = api.put(f"/v1/workflows/{wf_a['id']}/webhook", json={"secret": "x" * 10}, headers=H(b))
    assert resp.status_code == 404
    assert post_hook(api, wf_a["id"], body, sign("orbin", secret_b, body)).status_code == 401
    assert post_hook(api, wf_a["id"], body, sign("orbin", secret_a, body)).status_code == 202
    assert api.get("/v1/events", headers=H(b)).json()["data"] == []
    assert post_hook(api, str(uuid.uuid4()), body, {}).status_code == 404
    manual = make_workflow(api, a, "manual", {"type": "manual"})
    assert post_hook(api, manual["id"], body, sign("orbin", secret_a, body)).status_code == 404
    assert api.get(f"/v1/workflows/{manual['id']}/webhook", headers=H(a)).status_code == 404
    garbage = post_hook(api, wf_a["id"], b"{not json", sign("orbin", secret_a, b"{not json"))
    assert garbage.status_code == 422 and "not valid JSON" in garbage.json()["error"]["message"]
