"""Billing over the API (in-process), with the real ``stripe`` SDK against a local server
speaking Stripe's protocol, and webhooks signed the way Stripe signs them."""

from __future__ import annotations

import email
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stripe_server import StripeServer, event, sign
from tests.unit.ingest_support import active_workflow

WHSEC = "whsec_unit_test"
PLANS = {
    "plans": {
        "free": {"monthlyExecutions": 10, "requestsPerMinutePerKey": 600,
                 "requestsPerMinutePerOrg": 600, "concurrency": 3, "retentionDays": 7},
        "pro": {"monthlyExecutions": 5000, "requestsPerMinutePerKey": 1000,
                "requestsPerMinutePerOrg": 3000, "concurrency": 17, "retentionDays": 30},
        "business": {"monthlyExecutions": 50000, "requestsPerMinutePerKey": 1000,
                     "requestsPerMinutePerOrg": 3000, "concurrency": 40, "retentionDays": 90},
    }
}  # fmt: skip


@pytest.fixture
def plans_file(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from tenancy import config

    path = tmp_path / "plans.json"
    path.write_text(json.dumps(PLANS))
    monkeypatch.setenv("ORBIN_PLANS_FILE", str(path))
    config.reset_settings()
    yield path
    monkeypatch.delenv("ORBIN_PLANS_FILE")
    config.reset_settings()


@pytest.fixture
def stripe_server(plans_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeServer]:
    from tenancy import config

    with StripeServer(api_key="sk_test_unit") as server:
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_unit")
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WHSEC)
        monkeypatch.setenv("ORBIN_STRIPE_API_BASE", server.url)
        config.reset_settings()
        yield server
    for k in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "ORBIN_STRIPE_API_BASE"):
        monkeypatch.delenv(k)
    config.reset_settings()


def org_row(org_id: str):
    from tenancy.db import session_scope
    from tenancy.models import Organization

    with session_scope() as session:
        org = session.get(Organization, org_id)
        session.expunge(org)
        return org


def post_event(api, payload: dict, *, secret: str = WHSEC, ts: int | None = None):
    body = json.dumps(payload).encode()
    return api.post(
        "/api/webhooks/stripe",
        content=body,
        headers={"stripe-signature": sign(body, secret, ts), "content-type": "application/json"},
    )


def audit_actions(org_id: str) -> list[str]:
    from sqlalchemy import select

    from tenancy.db import session_scope
    from tenancy.models import AuditLog

    with session_scope() as session:
        return list(
            session.scalars(
                select(AuditLog.action)
                .where(AuditLog.organization_id == org_id)
                .order_by(AuditLog.created_at)
            )
        )


def add_owner(org_id: str, email_: str) -> str:
    from tenancy.db import session_scope
    from tenancy.orgs import add_member, create_user

    with session_scope() as session:
        user = create_user(session, email=email_, name="Owner", password=None)
        add_member(session, organization_id=org_id, user_id=user.id, role="owner")
        return user.id


# --- GET /v1/billing, permissions, local mode ----------------------------------------------


def test_billing_shows_the_plan_file_and_the_period(api, make_org, plans_file) -> None:
    org = make_org("acme")
    r = api.get("/v1/billing", headers={"x-api-key": org.key})
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["organizationId"] == org.id and b["plan"] == "free" and b["status"] == "active"
    assert b["usage"] == {"executions": 0, "limit": 10, "percent": 0.0, "overage": False}
    assert b["limits"]["concurrency"] == 3 and b["limits"]["retentionDays"] == 7
    assert b["stripe"]["configured"] is False
    start, end = b["period"]["start"], b["period"]["end"]
    assert isinstance(start, int) and start > 10**12 and start < end  # ms since the epoch


def test_who_may_read_and_change_billing(api, make_org, plans_file) -> None:
    reader = make_org("ro", key_type="restricted", permissions=["billing:read"])
    other = make_org("ev", key_type="restricted", permissions=["events:write"])
    assert api.get("/v1/billing", headers={"x-api-key": reader.key}).status_code == 200
    denied = api.get("/v1/billing", headers={"x-api-key": other.key})
    assert denied.status_code == 403 and "billing:read" in denied.json()["error"]["message"]
    # billing:read alone may not start a Checkout, even in local mode (checked first).
    r = api.post("/v1/billing/checkout", headers={"x-api-key": reader.key}, json={"plan": "pro"})
    assert r.status_code == 403 and "billing:write" in r.json()["error"]["message"]
    assert api.get("/v1/billing").status_code == 401


def test_without_stripe_the_stripe_endpoints_say_what_to_set(api, make_org, plans_file) -> None:
    org = make_org("local")
    h = {"x-api-key": org.key}
    for method, path, body in [
        ("POST", "/v1/billing/checkout", {"plan": "pro"}),
        ("POST", "/v1/billing/portal", {}),
        ("GET", "/v1/billing/invoices", None),
    ]:
        r = api.request(method, path, headers=h, json=body)
        assert r.status_code == 503, (path, r.text)
        err = r.json()["error"]
        assert err["code"] == "billing_not_configured" and "STRIPE_SECRET_KEY" in err["message"]
    r = post_event(api, event("invoice.paid", {"id": "in_1"}, event_id="evt_x"))
    assert r.status_code == 503 and "STRIPE_WEBHOOK_SECRET" in r.json()["error"]["message"]


def test_set_plan_without_stripe_changes_the_limits_at_once(api, make_org, plans_file) -> None:
    from tenancy.billing import set_plan_by_slug
    from tenancy.db import session_scope
    from tenancy.errors import InvalidInput

    org = make_org("ops")
    with session_scope() as session:
        set_plan_by_slug(session, slug="ops", plan="business")
    b = api.get("/v1/billing", headers={"x-api-key": org.key}).json()
    assert b["plan"] == "business" and b["usage"]["limit"] == 50000
    assert org_row(org.id).pool_concurrency is None  # the worker writes 40 to the pool
    assert "billing.plan_changed" in audit_actions(org.id)
    with pytest.raises(InvalidInput, match="unknown plan 'gold'"):
        with session_scope() as session:
            set_plan_by_slug(session, slug="ops", plan="gold")


# --- Checkout, portal, invoices through the SDK ----------------------------------------------


def test_checkout_creates_the_customer_once_and_carries_the_org(
    api, make_org, stripe_server
) -> None:
    org = make_org("buyer")
    add_owner(org.id, "owner@buyer.test")
    h = {"x-api-key": org.key}
    r = api.post("/v1/billing/checkout", headers=h, json={"plan": "pro"})
    assert r.status_code == 200, r.text
    assert r.json()["url"].startswith("https://checkout.stripe.test/")
    (created,) = stripe_server.calls("POST", "/v1/customers")
    assert created.fields["metadata"] == {"orbin_org_id": org.id}
    assert created.fields["email"] == "owner@buyer.test"
    (session,) = stripe_server.calls("POST", "/v1/checkout/sessions")
    f = session.fields
    assert f["mode"] == "subscription" and f["customer"] == org_row(org.id).stripe_customer_id
    assert f["line_items"] == [{"price": "price_pro", "quantity": "1"}]
    assert f["metadata"]["orbin_org_id"] == org.id
    assert f["subscription_data"]["metadata"]["orbin_org_id"] == org.id
    assert stripe_server.calls("GET", "/v1/prices")[0].query["lookup_keys"] == ["pro"]
    # Again: the stored customer is reused.
    assert api.post("/v1/billing/checkout", headers=h, json={"plan": "business"}).status_code == 200
    assert len(stripe_server.calls("POST", "/v1/customers")) == 1
    assert "billing.checkout_started" in audit_actions(org.id)
    p = api.post("/v1/billing/portal", headers=h, json={})
    assert p.status_code == 200 and p.json()["url"].startswith("https://billing.stripe.test/")
    (portal,) = stripe_server.calls("POST", "/v1/billing_portal/sessions")
    assert portal.fields["customer"] == org_row(org.id).stripe_customer_id


def test_a_subscribed_org_changing_plan_switches_its_subscription(
    api, make_org, stripe_server
) -> None:
    """No second subscription: the live one's price is changed (prorated), and Stripe's
    customer.subscription.updated then moves the plan."""
    org = make_org("switcher")
    h = {"x-api-key": org.key}
    assert api.post("/v1/billing/checkout", headers=h, json={"plan": "pro"}).status_code == 200
    customer = org_row(org.id).stripe_customer_id
    sub = stripe_server.subscription(org_id=org.id, customer=customer, lookup_key="pro")
    payload = event("customer.subscription.created", sub, event_id="evt_sw1")
    assert post_event(api, payload).status_code == 200 and org_row(org.id).plan == "pro"
    r = api.post("/v1/billing/checkout", headers=h, json={"plan": "business"})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == sub["id"] and "checkout=switched" in r.json()["url"]
    assert len(stripe_server.calls("POST", "/v1/checkout/sessions")) == 1, "no second Checkout"
    (update,) = stripe_server.calls("POST", f"/v1/subscriptions/{sub['id']}")
    assert update.fields["items"] == [{"id": sub["items"]["data"][0]["id"], "price": "price_biz"}]
    assert update.fields["proration_behavior"] == "create_prorations"
    assert "billing.subscription_switched" in audit_actions(org.id)
    switched = stripe_server.subscriptions[sub["id"]]
    later = event(
        "customer.subscription.updated", switched, event_id="evt_sw2", created=sub["created"] + 1
    )
    assert post_event(api, later).status_code == 200
    assert org_row(org.id).plan == "business"


def test_checkout_refuses_what_cannot_be_bought(api, make_org, stripe_server) -> None:
    org = make_org("picky")
    h = {"x-api-key": org.key}
    r = api.post("/v1/billing/checkout", headers=h, json={"plan": "gold"})
    assert r.status_code == 422 and "unknown plan 'gold'" in r.json()["error"]["message"]
    r = api.post("/v1/billing/checkout", headers=h, json={"plan": "free"})
    assert r.status_code == 422 and "portal" in r.json()["error"]["message"]
    stripe_server.prices = [p for p in stripe_server.prices if p["lookup_key"] != "business"]
    r = api.post("/v1/billing/checkout", headers=h, json={"plan": "business"})
    assert r.status_code == 422 and "lookup_key 'business'" in r.json()["error"]["message"]
    r = api.post("/v1/billing/checkout", headers=h, json={"plan": "pro", "extra": 1})
    assert r.status_code == 422


def test_stripe_errors_are_clear_answers_not_500s(api, make_org, stripe_server) -> None:
    org = make_org("flaky")
    h = {"x-api-key": org.key}
    stripe_server.fail("/v1/checkout/sessions", 500, 500, 500)  # the SDK retries twice
    r = api.post("/v1/billing/checkout", headers=h, json={"plan": "pro"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "stripe_unavailable"
    stripe_server.fail("/v1/billing_portal/sessions", 400)
    r = api.post("/v1/billing/portal", headers=h, json={})
    assert r.status_code == 422 and "Stripe refused" in r.json()["error"]["message"]


def test_invoices_are_listed_for_the_customer(api, make_org, stripe_server) -> None:
    org = make_org("payer")
    h = {"x-api-key": org.key}
    empty = {"data": [], "nextCursor": None, "hasMore": False}
    assert api.get("/v1/billing/invoices", headers=h).json() == empty
    api.post("/v1/billing/portal", headers=h, json={})  # creates the customer
    customer = org_row(org.id).stripe_customer_id
    stripe_server.invoices = [
        {"id": "in_1", "object": "invoice", "customer": customer, "number": "A-1",
         "status": "paid", "amount_due": 4900, "amount_paid": 4900, "currency": "usd",
         "created": 1, "hosted_invoice_url": "https://invoice.stripe.test/i/1"},
        {"id": "in_2", "object": "invoice", "customer": "cus_other", "number": "B-1"},
    ]  # fmt: skip
    (inv,) = api.get("/v1/billing/invoices", headers=h).json()["data"]
    assert inv["number"] == "A-1" and inv["status"] == "paid" and inv["amountPaid"] == 4900
    assert inv["createdAt"] == 1000  # Stripe's seconds, answered as ms
    assert inv["hostedInvoiceUrl"] == "https://invoice.stripe.test/i/1"


# --- webhooks ----------------------------------------------------------------------------------


def test_webhook_signatures_are_checked_by_the_sdk(api, make_org, stripe_server) -> None:
    org = make_org("signed")
    sub = stripe_server.subscription(org_id=org.id, customer="cus_x")
    payload = event("customer.subscription.updated", sub, event_id="evt_sig")
    assert post_event(api, payload, secret="whsec_wrong").status_code == 400
    stale = post_event(api, payload, ts=int(time.time()) - 900)
    assert stale.status_code == 400 and stale.json()["error"]["code"] == "invalid_signature"
    r = api.post("/api/webhooks/stripe", content=json.dumps(payload).encode())
    assert r.status_code == 400 and "missing Stripe-Signature" in r.json()["error"]["message"]
    assert org_row(org.id).plan == "free"  # nothing applied by a bad delivery
    ok = post_event(api, payload)
    assert ok.status_code == 200 and ok.json()["duplicate"] is False
    assert org_row(org.id).plan == "pro"


def test_subscription_lifecycle_and_redelivery(api, make_org, stripe_server) -> None:
    org = make_org("life")
    h = {"x-api-key": org.key}
    sub = stripe_server.subscription(org_id=org.id, customer="cus_life")
    now = int(time.time())
    up = event("customer.subscription.updated", sub, event_id="evt_up", created=now)
    assert post_event(api, up).status_code == 200
    b = api.get("/v1/billing", headers=h).json()
    assert (b["plan"], b["status"], b["usage"]["limit"]) == ("pro", "active", 5000)
    row = org_row(org.id)
    assert row.stripe_customer_id == "cus_life" and row.stripe_subscription_id == sub["id"]
    assert row.pool_concurrency is None  # the worker is to write pro's 17 to the pool
    # A redelivery answers 200 and changes nothing (even after a manual change).
    from tenancy.billing import set_plan_by_slug
    from tenancy.db import session_scope

    with session_scope() as session:
        set_plan_by_slug(session, slug="life", plan="business")
    again = post_event(api, up)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert org_row(org.id).plan == "business"
    # An event older than the last applied one never moves the subscription back.
    old = event(
        "customer.subscription.updated",
        {**sub, "status": "incomplete"},
        event_id="evt_old",
        created=now - 60,
    )
    assert "older" in post_event(api, old).json()["outcome"]
    # Deleted: back to free.
    gone = event(
        "customer.subscription.deleted", {**sub, "status": "canceled"}, event_id="evt_del",
        created=now,
    )  # fmt: skip
    assert post_event(api, gone).status_code == 200
    b = api.get("/v1/billing", headers=h).json()
    assert (b["plan"], b["status"], b["usage"]["limit"]) == ("free", "canceled", 10)
    assert org_row(org.id).stripe_subscription_id == sub["id"]  # kept, status canceled
    # The same second's update after the deletion does not revive it.
    late = event("customer.subscription.updated", sub, event_id="evt_late", created=now)
    assert "canceled" in post_event(api, late).json()["outcome"]
    assert org_row(org.id).plan == "free"
    assert audit_actions(org.id).count("billing.plan_changed") >= 3


def test_checkout_completed_reads_the_subscription(api, make_org, stripe_server) -> None:
    org = make_org("checkout")
    sub = stripe_server.subscription(org_id=org.id, customer="cus_ck", lookup_key="business")
    done = {"id": "cs_1", "object": "checkout.session", "customer": "cus_ck",
            "subscription": sub["id"], "client_reference_id": org.id,
            "metadata": {"orbin_org_id": org.id}}  # fmt: skip
    r = post_event(api, event("checkout.session.completed", done, event_id="evt_ck"))
    assert r.status_code == 200 and r.json()["outcome"] == "plan business (active)"
    assert stripe_server.calls("GET", f"/v1/subscriptions/{sub['id']}")
    assert org_row(org.id).stripe_customer_id == "cus_ck"
    # Later events find the org by its customer id alone.
    bare = {**sub, "metadata": {}, "status": "active"}
    items = {"object": "list", "data": [{"price": stripe_server.prices[0]}]}
    r = post_event(
        api, event("customer.subscription.updated", {**bare, "items": items}, event_id="evt_c2")
    )
    assert r.json()["outcome"] == "plan pro (active)"


def test_a_failed_payment_marks_past_due_and_tells_the_owners(
    api, make_org, stripe_server, tmp_path
) -> None:
    from sqlalchemy import select

    from tenancy.db import session_scope
    from tenancy.models import Notification

    org = make_org("late")
    owner = add_owner(org.id, "boss@late.test")
    sub = stripe_server.subscription(org_id=org.id, customer="cus_late")
    post_event(api, event("customer.subscription.created", sub, event_id="evt_c"))
    inv = {"id": "in_9", "object": "invoice", "customer": "cus_late", "number": "L-9",
           "amount_due": 4900, "currency": "usd", "subscription": sub["id"]}  # fmt: skip
    r = post_event(api, event("invoice.payment_failed", inv, event_id="evt_fail"))
    assert r.status_code == 200
    b = api.get("/v1/billing", headers={"x-api-key": org.key}).json()
    assert (b["plan"], b["status"]) == ("pro", "past_due")
    with session_scope() as session:
        notes = list(session.scalars(select(Notification).where(Notification.user_id == owner)))
    assert [n.type for n in notes] == ["payment_failed"] and "L-9" in notes[0].message
    mails = list((tmp_path / "home" / "outbox").glob("*.eml"))
    assert len(mails) == 1
    msg = email.message_from_bytes(mails[0].read_bytes())
    assert msg["To"] == "boss@late.test" and "payment failed" in msg["Subject"]
    post_event(api, event("invoice.paid", inv, event_id="evt_paid"))
    assert api.get("/v1/billing", headers={"x-api-key": org.key}).json()["status"] == "active"
    assert "billing.payment_failed" in audit_actions(org.id)


def test_unknown_events_and_orgs_are_answered_and_ignored(api, make_org, stripe_server) -> None:
    r = post_event(api, event("customer.created", {"id": "cus_1"}, event_id="evt_other"))
    assert r.status_code == 200 and r.json()["outcome"].startswith("ignored")
    sub = stripe_server.subscription(org_id="no-such-org", customer="cus_nobody")
    r = post_event(api, event("customer.subscription.updated", sub, event_id="evt_nobody"))
    assert r.status_code == 200 and "no organization" in r.json()["outcome"]
    r = api.post(
        "/api/webhooks/stripe",
        content=b"not json",
        headers={"stripe-signature": sign(b"not json", WHSEC)},
    )
    assert r.status_code == 400


# --- metering, the limit, the series ----------------------------------------------------------


def test_the_limit_is_a_429_execution_limit_reached(api, make_org, plans_file) -> None:
    org = make_org("capped")
    active_workflow(org.id, "job.run")
    h = {"x-api-key": org.key}
    codes = [api.post("/v1/events", headers=h, json={"type": "job.run"}) for _ in range(11)]
    assert [c.status_code for c in codes] == [202] * 10 + [429]
    assert codes[-1].json()["error"]["code"] == "execution_limit_reached"
    b = api.get("/v1/billing", headers=h).json()
    assert b["usage"] == {"executions": 10, "limit": 10, "percent": 100.0, "overage": False}


def test_usage_series_per_day_and_workflow_scoped_to_the_org(api, make_org, plans_file) -> None:
    a, b = make_org("aaa"), make_org("bbb")
    wf1 = active_workflow(a.id, "one.run", slug="one")
    active_workflow(a.id, "two.run", slug="two")
    active_workflow(b.id, "one.run", slug="one")
    for t in ["one.run"] * 3 + ["two.run"] * 2:
        assert (
            api.post("/v1/events", headers={"x-api-key": a.key}, json={"type": t}).status_code
            == 202
        )
    api.post("/v1/events", headers={"x-api-key": b.key}, json={"type": "one.run"})
    today = time.strftime("%Y-%m-%d", time.gmtime())
    r = api.get("/v1/usage", headers={"x-api-key": a.key}, params={"groupBy": "day"})
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert {"day": today, "executions": 5} in series and r.json()["total"] == 5
    assert all(s["executions"] == 0 for s in series if s["day"] != today)
    r = api.get(
        "/v1/usage",
        headers={"x-api-key": a.key},
        params={"groupBy": "workflow", "from": today, "to": today},
    )
    per = r.json()["series"]
    assert [(s["slug"], s["executions"]) for s in per] == [("one", 3), ("two", 2)]
    assert per[0]["workflowId"] == wf1
    other = api.get("/v1/usage", headers={"x-api-key": b.key}).json()
    assert other["total"] == 1
    bad = api.get("/v1/usage", headers={"x-api-key": a.key}, params={"from": "yesterday"})
    assert bad.status_code == 422 and "from" in bad.json()["error"]["message"]
    bad = api.get("/v1/usage", headers={"x-api-key": a.key}, params={"groupBy": "hour"})
    assert bad.status_code == 422


def test_concurrent_deliveries_of_one_event_apply_it_once(make_org, stripe_server) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from orbin_flows.billing import webhooks

    org = make_org("race")
    sub = stripe_server.subscription(org_id=org.id, customer="cus_race")
    body = json.dumps(event("customer.subscription.updated", sub, event_id="evt_race")).encode()
    start = threading.Barrier(6)

    def deliver(_: int) -> bool:
        start.wait()
        return webhooks.receive({"stripe-signature": sign(body, WHSEC)}, body).duplicate

    with ThreadPoolExecutor(6) as pool:
        duplicates = list(pool.map(deliver, range(6)))
    assert sorted(duplicates) == [False] + [True] * 5
    assert audit_actions(org.id).count("billing.plan_changed") == 1
    assert org_row(org.id).plan == "pro"


def test_the_period_follows_the_subscription(api, make_org, stripe_server) -> None:
    from tenancy.db import session_scope
    from tenancy.models import Organization

    org = make_org("period")
    h = {"x-api-key": org.key}
    active_workflow(org.id, "job.run")
    for _ in range(4):
        api.post("/v1/events", headers=h, json={"type": "job.run"})
    sub = stripe_server.subscription(org_id=org.id, customer="cus_p")
    item = sub["items"]["data"][0]
    now = int(time.time())
    post_event(api, event("customer.subscription.created", sub, event_id="evt_p1", created=now))
    b = api.get("/v1/billing", headers=h).json()
    assert b["period"]["start"] == item["current_period_start"] * 1000
    assert b["usage"]["executions"] == 4  # an upgrade does not reset the period's count
    renewed = {**item, "current_period_start": item["current_period_end"],
               "current_period_end": item["current_period_end"] + 30 * 86400}  # fmt: skip
    nxt = {**sub, "items": {"object": "list", "data": [renewed]}}
    post_event(api, event("customer.subscription.updated", nxt, event_id="evt_p2", created=now + 1))
    b = api.get("/v1/billing", headers=h).json()
    assert b["usage"]["executions"] == 0  # a renewal starts a new count
    with session_scope() as session:
        row = session.get(Organization, org.id)
        assert row.usage_reset_at == renewed["current_period_end"] * 1000


def test_rate_limits_follow_a_plan_change_at_once(api, make_org, plans_file) -> None:
    from tenancy.billing import set_plan_by_slug
    from tenancy.db import session_scope

    org = make_org("rates")
    h = {"x-api-key": org.key}
    assert api.get("/v1/billing", headers=h).headers["x-ratelimit-limit"] == "600"
    with session_scope() as session:
        set_plan_by_slug(session, slug="rates", plan="pro")
    assert api.get("/v1/billing", headers=h).headers["x-ratelimit-limit"] == "1000"
