"""Billing from outside, over real HTTP, on a platform of its own (`orbin up` with a plans
file and Stripe pointed at a local server speaking Stripe's protocol): the Prefect pool's
concurrency limit follows the plan, usage is metered per run, the 70 % notice is an e-mail in
the outbox, the limit is a 429, Checkout goes through the real SDK, webhooks are signed."""

from __future__ import annotations

import email
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from tests.support import services
from tests.support.stripe_server import StripeServer, event, sign

WHSEC = "whsec_integration"
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


@pytest.fixture(scope="module")
def stripe() -> Iterator[StripeServer]:
    with StripeServer(api_key="sk_test_integration") as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def billed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    stripe: StripeServer,
):
    home = tmp_path_factory.mktemp(f"orbin-billing-{request.param}")
    plans = home / "plans.json"
    plans.write_text(json.dumps(PLANS))
    dbs: list[str] = []
    urls: dict[str, str] = {}
    if request.param == "postgres":
        from tests.conftest import require_postgres

        require_postgres()
        dbs = [services.create_pg_database("orbin_bill"), services.create_pg_database("pf_bill")]
        urls = {
            "database_url": services.pg_url(dbs[0]),
            "prefect_database_url": services.pg_url(dbs[1], driver="asyncpg"),
        }
    p = services.start_platform(
        home,
        **urls,
        extra_env={
            "ORBIN_PLANS_FILE": str(plans),
            "STRIPE_SECRET_KEY": "sk_test_integration",
            "STRIPE_WEBHOOK_SECRET": WHSEC,
            "ORBIN_STRIPE_API_BASE": stripe.url,
        },
    )
    stripe.requests.clear()
    try:
        yield p
    finally:
        p.stop()
        for name in dbs:
            services.drop_pg_database(name)


def db_url(p: services.Platform) -> str:
    return p.env.get("ORBIN_DATABASE_URL") or f"sqlite:///{p.home / 'orbin.db'}"


def pool_limit(p: services.Platform) -> int | None:
    r = httpx.get(f"{p.prefect_api_url}/work_pools/orbin-demo", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["concurrency_limit"]


def wait_for(pred, what: str, seconds: float = 20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def webhook(p: services.Platform, payload: dict, *, secret: str = WHSEC) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(
        f"{p.api_url}/api/webhooks/stripe",
        content=body,
        headers={"stripe-signature": sign(body, secret), "content-type": "application/json"},
        timeout=30,
    )


def billing(p: services.Platform, key: str) -> dict:
    r = httpx.get(f"{p.api_url}/v1/billing", headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_pool_limit_follows_the_plan(billed: services.Platform, stripe: StripeServer):
    p = billed
    key = p.new_key()
    org_id = billing(p, key)["organizationId"]
    assert pool_limit(p) == 3  # set before the API answered
    stripe.customers["cus_int"] = {"id": "cus_int", "object": "customer", "metadata": {}}
    sub = stripe.subscription(org_id=org_id, customer="cus_int")
    r = webhook(p, event("customer.subscription.updated", sub, event_id="evt_int_up"))
    assert r.status_code == 200, r.text
    assert billing(p, key)["plan"] == "pro"
    wait_for(lambda: pool_limit(p) == 17, "the pool's limit becoming pro's 17")
    assert webhook(p, event("customer.subscription.updated", sub, event_id="evt_int_up")).json()[
        "duplicate"
    ]
    p.orbin("org", "set-plan", "--org", "demo", "--plan", "business")
    wait_for(lambda: pool_limit(p) == 40, "the pool's limit becoming business's 40")
    gone = event("customer.subscription.deleted", {**sub, "status": "canceled"}, event_id="evt_d")
    assert webhook(p, gone).status_code == 200
    assert billing(p, key)["plan"] == "free"
    wait_for(lambda: pool_limit(p) == 3, "the pool's limit returning to free's 3")
    assert webhook(p, gone, secret="whsec_wrong").status_code == 400


def outbox_mails(home: Path) -> list[email.message.Message]:
    return [email.message_from_bytes(f.read_bytes()) for f in (home / "outbox").glob("*.eml")]


def test_metering_notice_and_limit(billed: services.Platform, stripe: StripeServer):
    p = billed
    key = p.new_key()
    h = {"x-api-key": key}
    start = billing(p, key)["usage"]["executions"]
    for _ in range(7 - start):
        r = httpx.post(f"{p.api_url}/v1/events", headers=h, json={"type": "demo.hello"})
        assert r.status_code == 202, r.text
    usage = billing(p, key)["usage"]
    assert (usage["executions"], usage["percent"]) == (7, 70.0)
    mails = wait_for(
        lambda: [m for m in outbox_mails(p.home) if "70%" in m["Subject"]], "the 70 % e-mail"
    )
    assert len(mails) == 1 and mails[0]["To"] == "demo@orbin.local"
    engine = sqlalchemy.create_engine(db_url(p))
    with engine.connect() as conn:
        titles = list(
            conn.execute(
                sqlalchemy.text("select title from notifications where type = 'usage_threshold'")
            ).scalars()
        )
    engine.dispose()
    assert len(titles) == 1 and "70%" in titles[0]
    codes = []
    for _ in range(4):
        r = httpx.post(f"{p.api_url}/v1/events", headers=h, json={"type": "demo.hello"})
        codes.append(r.status_code)
    assert codes == [202, 202, 202, 429]
    assert r.json()["error"]["code"] == "execution_limit_reached"
    series = httpx.get(f"{p.api_url}/v1/usage", headers=h, params={"groupBy": "workflow"}).json()
    assert series["total"] == 10 and series["series"][0]["slug"]
    # Checkout over HTTP, through the SDK, for the demo org.
    r = httpx.post(f"{p.api_url}/v1/billing/checkout", headers=h, json={"plan": "pro"}, timeout=30)
    assert r.status_code == 200, r.text
    (session,) = stripe.calls("POST", "/v1/checkout/sessions")
    assert session.fields["metadata"]["orbin_org_id"] == billing(p, key)["organizationId"]
    assert session.fields["customer"] == "cus_int"  # the customer stored from the webhook


def test_a_pool_edited_by_hand_is_put_back(billed: services.Platform, monkeypatch) -> None:
    """What the worker's reconciliation pass does every minute, run here at once."""
    import asyncio

    from prefect.client.orchestration import PrefectClient

    from orbin_flows.billing.upkeep import reconcile_pools
    from tenancy import config, db

    p = billed
    plan_limit = pool_limit(p)
    for _ in range(10):  # Prefect on SQLite answers 503 while its database is busy; its own
        # client retries those, so does this one
        r = httpx.patch(
            f"{p.prefect_api_url}/work_pools/orbin-demo",
            json={"concurrency_limit": 99},
            timeout=10,
        )
        if r.status_code != 503:
            break
        time.sleep(1)
    assert r.status_code == 204, r.text
    monkeypatch.setenv("ORBIN_HOME", str(p.home))
    monkeypatch.setenv("ORBIN_DATABASE_URL", db_url(p))
    monkeypatch.setenv("ORBIN_PLANS_FILE", str(p.home / "plans.json"))
    config.reset_settings()
    db.dispose_engines()
    try:

        async def run() -> int:
            async with PrefectClient(p.prefect_api_url) as client:
                return await reconcile_pools(client)

        # 1, or 0 when the worker's own pass (every minute) got there first.
        assert asyncio.run(run()) in (0, 1)
    finally:
        db.dispose_engines()
        monkeypatch.undo()
        config.reset_settings()
    assert pool_limit(p) == plan_limit
