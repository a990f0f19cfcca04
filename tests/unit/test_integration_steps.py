"""Integration steps run as the engine runs them (``Action.run``), through slack_sdk, PyGithub
and httpx against a local server speaking each protocol: what reaches the provider, the
output, the provider's errors and rate limits, and the integration's bookkeeping."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from orbin_flows.actions import FatalStepError, RetryableStepError, get_action
from orbin_flows.actions.base import StepContext
from orbin_flows.signatures import verify_orbin
from tests.support.providers import GITHUB_TOKEN, SLACK_TOKEN, STRIPE_KEY, Providers

SIGNING = "whsec-step-test-secret"


@pytest.fixture
def providers(monkeypatch):
    p = Providers()
    monkeypatch.setenv("ORBIN_EGRESS_ALLOW", f"127.0.0.1:{p.port}")
    yield p
    p.close()


@pytest.fixture
def org(make_org, providers):
    from tenancy.db import session_scope
    from tenancy.integrations import create_integration

    o = make_org("acme")
    with session_scope() as session:
        for provider, name, config, creds in (
            ("webhook", "hook", {"url": f"{providers.url}/hook"}, {"signingSecret": SIGNING}),
            ("webhook", "down", {"url": f"{providers.url}/hook/down"}, {"signingSecret": SIGNING}),
            ("slack", "team", {"baseUrl": providers.slack_url}, {"botToken": SLACK_TOKEN}),
            ("github", "gh", {"baseUrl": providers.github_url}, {"token": GITHUB_TOKEN}),
            ("stripe", "pay", {"apiBase": providers.stripe_url}, {"secretKey": STRIPE_KEY}),
        ):
            create_integration(
                session,
                organization_id=o.id,
                provider=provider,
                name=name,
                config=config,
                credentials=creds,
            )
    return o


async def _run(org, config: dict):
    cls = get_action(config["action"])
    ctx = StepContext(org.id, org.slug, "run-1", "step-1", 1)
    return await cls().run(cls.Config.model_validate(config), ctx)


def _row(org, name: str):
    from tenancy.db import session_scope
    from tenancy.integrations import read_integration_by_name

    with session_scope() as session:
        return read_integration_by_name(session, organization_id=org.id, name=name)


async def test_slack_post_message_goes_through_the_sdk(org, providers) -> None:
    out = await _run(
        org,
        {
            "action": "slack.postMessage",
            "integration": "team",
            "channel": "#general",
            "text": "Hi Ada",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Hi*"}}],
        },
    )
    assert out["ok"] is True and out["channel"] == "C123" and out["ts"]
    call = providers.calls_to("chat.postMessage")[-1]
    assert call.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    sent = call.json()
    assert sent["channel"] == "#general" and sent["text"] == "Hi Ada"
    assert sent["blocks"][0]["type"] == "section"
    assert _row(org, "team").last_used_at is not None


async def test_slack_rate_limit_waits_the_retry_after_then_succeeds(org, providers) -> None:
    providers.rate_limit_next("/slack/api/chat.postMessage", 1)
    started = time.monotonic()
    out = await _run(
        org, {"action": "slack.postMessage", "integration": "team", "channel": "#c", "text": "x"}
    )
    assert out["ok"] is True
    assert time.monotonic() - started >= 1.0
    assert len(providers.calls_to("chat.postMessage")) == 2


async def test_slack_error_is_fatal_with_slacks_own_code(org, providers) -> None:
    with pytest.raises(FatalStepError, match="no_text"):
        await _run(org, {"action": "slack.postMessage", "integration": "team", "channel": "#c"})
    assert "no_text" in (_row(org, "team").last_error or "")


async def test_github_create_issue_with_labels(org, providers) -> None:
    out = await _run(
        org,
        {
            "action": "github.createIssue",
            "integration": "gh",
            "repo": "octo/hello",
            "title": "Broken build",
            "body": "see logs",
            "labels": ["bug"],
        },
    )
    assert out == {
        "number": 42,
        "htmlUrl": "https://github.test/octo/hello/issues/42",
        "state": "open",
    }
    call = providers.calls_to("/repos/octo/hello/issues")[-1]
    assert call.json() == {"title": "Broken build", "body": "see logs", "labels": ["bug"]}
    assert call.headers["authorization"] == f"token {GITHUB_TOKEN}"


async def test_github_unknown_repo_fails_with_the_providers_message(org, providers) -> None:
    with pytest.raises(FatalStepError, match="404 Not Found"):
        await _run(
            org,
            {"action": "github.createIssue", "integration": "gh", "repo": "no/pe", "title": "t"},
        )


async def test_github_rate_limit_waits_the_retry_after(org, providers) -> None:
    providers.rate_limit_next("/github/api/v3/repos/octo/hello/issues", 1)
    out = await _run(
        org,
        {"action": "github.createIssue", "integration": "gh", "repo": "octo/hello", "title": "t"},
    )
    assert out["number"] == 42
    assert len(providers.calls_to("/repos/octo/hello/issues")) == 2


async def test_github_dispatch_workflow(org, providers) -> None:
    out = await _run(
        org,
        {
            "action": "github.dispatchWorkflow",
            "integration": "gh",
            "repo": "octo/hello",
            "workflow": "ci.yml",
            "ref": "main",
            "inputs": {"env": "prod"},
        },
    )
    assert out == {"dispatched": True, "workflow": "ci.yml", "ref": "main"}
    call = providers.calls_to("/actions/workflows/ci.yml/dispatches")[-1]
    assert call.json() == {"ref": "main", "inputs": {"env": "prod"}}


async def test_webhook_send_is_signed_over_the_exact_body(org, providers) -> None:
    out = await _run(
        org, {"action": "webhook.send", "integration": "hook", "body": {"hello": "Ada"}}
    )
    assert out == {"status": 200, "body": {"received": True}}
    call = providers.calls_to("/hook")[-1]
    verify_orbin(call.headers, call.body.encode(), [SIGNING])
    assert call.json() == {"hello": "Ada"}


async def test_repeated_failures_put_the_integration_in_error_and_notify_admins(
    org, providers
) -> None:
    from tenancy.db import session_scope
    from tenancy.models import MailItem, Notification
    from tenancy.orgs import add_member, create_user

    with session_scope() as session:
        admin = create_user(session, email="a@acme.test", name="A", password=None)
        member = create_user(session, email="m@acme.test", name="M", password=None)
        add_member(session, organization_id=org.id, user_id=admin.id, role="admin")
        add_member(session, organization_id=org.id, user_id=member.id, role="member")
    for _ in range(3):
        with pytest.raises(RetryableStepError, match="503"):
            await _run(org, {"action": "webhook.send", "integration": "down", "body": {}})
    row = _row(org, "down")
    assert row.status == "error" and row.failure_count == 3 and "503" in row.last_error
    with session_scope() as session:
        notes = list(session.scalars(select(Notification)))
    assert [(n.user_id, n.type) for n in notes] == [(admin.id, "integration_error")]
    with session_scope() as session:
        mails = list(session.scalars(select(MailItem)))
    assert [(m.to_address, m.subject) for m in mails] == [
        ("a@acme.test", "[Orbin] Integration error: down")
    ]
    await _run(org, {"action": "webhook.send", "integration": "hook", "body": {}})
    assert _row(org, "hook").status == "active"


async def test_an_unknown_or_other_providers_integration_fails_the_step(org, providers) -> None:
    with pytest.raises(FatalStepError, match="no integration named 'nope'"):
        await _run(org, {"action": "webhook.send", "integration": "nope", "body": {}})
    with pytest.raises(FatalStepError, match="is a slack integration"):
        await _run(org, {"action": "webhook.send", "integration": "team", "body": {}})


async def test_stripe_customer_and_invoice_item_through_the_sdk(org, providers) -> None:
    out = await _run(
        org,
        {
            "action": "stripe.createCustomer",
            "integration": "pay",
            "email": "ada@example.com",
            "metadata": {"orbinRun": "r1"},
        },
    )
    assert out == {"id": "cus_test1", "email": "ada@example.com"}
    call = providers.calls_to("/stripe/v1/customers")[-1]
    assert call.headers["authorization"] == f"Bearer {STRIPE_KEY}"
    assert call.headers["idempotency-key"] == "orbin:run-1:step-1"
    assert "metadata[orbinRun]=r1" in call.body
    item = await _run(
        org,
        {
            "action": "stripe.createInvoiceItem",
            "integration": "pay",
            "customer": "cus_test1",
            "amount": 4900,
            "currency": "USD",
        },
    )
    assert item == {"id": "ii_test1", "amount": 4900, "currency": "usd"}
    with pytest.raises(FatalStepError, match="No such customer"):
        await _run(
            org,
            {
                "action": "stripe.createInvoiceItem",
                "integration": "pay",
                "customer": "nope",
                "amount": 1,
                "currency": "usd",
            },
        )


async def test_stripe_rate_limit_is_retryable(org, providers) -> None:
    providers.rate_limit_next("/stripe/v1/customers", 120)
    with pytest.raises(RetryableStepError, match="Too many requests"):
        await _run(org, {"action": "stripe.createCustomer", "integration": "pay"})
