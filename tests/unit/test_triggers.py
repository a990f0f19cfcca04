"""Trigger matching, schedule fire times and webhook signature schemes, without services."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest

from orbin_flows import signatures
from orbin_flows.schedules import next_fire_times, schedule_config
from orbin_flows.spec import ScheduleTriggerConfig, validate_spec
from orbin_flows.triggers import event_trigger_matches, matches_filter, matches_type
from tenancy.errors import InvalidInput, Unauthenticated
from tenancy.webhook_secrets import derive_workflow_secret

# --- event triggers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("order.created", "order.created", True),
        ("order.created", "order.created.v2", False),
        ("order.*", "order.created", True),
        ("order.*", "order.refund.issued", True),
        ("order.*", "orders.created", False),
        ("order.*", "order", False),
        ("order*", "orders.created", True),
        ("*", "anything.at.all", True),
    ],
)
def test_event_type_patterns(pattern: str, event_type: str, expected: bool) -> None:
    assert matches_type(pattern, event_type) is expected


def test_payload_filters_by_path_with_one_of_lists() -> None:
    event = {
        "type": "order.created",
        "source": "shop",
        "data": {"total": 120, "customer": {"tier": "gold"}, "items": [{"sku": "A1"}]},
    }
    assert matches_filter({"data.customer.tier": "gold"}, event)
    assert matches_filter({"data.customer.tier": ["silver", "gold"], "source": "shop"}, event)
    assert matches_filter({"data.items.0.sku": "A1"}, event)
    assert not matches_filter({"data.customer.tier": "silver"}, event)
    assert not matches_filter({"data.customer.missing": None}, event), "absent is not null"
    assert not matches_filter({"data.items.5.sku": "A1"}, event)
    assert matches_filter(None, event) and matches_filter({}, event)


def test_event_trigger_needs_type_and_filter() -> None:
    trigger = {
        "type": "event",
        "config": {"eventType": "order.*", "filter": {"data.total": [100, 120]}},
    }
    assert event_trigger_matches(trigger, {"type": "order.paid", "data": {"total": 120}})
    assert not event_trigger_matches(trigger, {"type": "order.paid", "data": {"total": 5}})
    assert not event_trigger_matches(trigger, {"type": "invoice.paid", "data": {"total": 120}})
    assert not event_trigger_matches({"type": "webhook"}, {"type": "order.paid", "data": {}})


# --- schedules ------------------------------------------------------------------------


def _spec(trigger: dict) -> dict:
    return {"name": "S", "slug": "s", "trigger": trigger, "steps": []}


def test_schedule_config_is_cron_or_interval_with_a_real_time_zone() -> None:
    validate_spec(_spec({"type": "schedule", "config": {"cron": "*/5 * * * *"}}))
    validate_spec(_spec({"type": "schedule", "config": {"interval": 30, "timezone": "Asia/Tokyo"}}))
    bad = [
        ({}, "exactly one of cron or interval"),
        ({"cron": "* * * * *", "interval": 5}, "exactly one of cron or interval"),
        ({"cron": "61 * * * *"}, "not a cron expression"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"interval": 0}, "greater than or equal to 1"),
    ]
    for config, message in bad:
        with pytest.raises(InvalidInput) as err:
            validate_spec(_spec({"type": "schedule", "config": config}))
        assert message in err.value.message, err.value.message
        assert err.value.details[0]["path"].startswith("trigger.config")


def test_cron_fire_times_follow_the_time_zone_across_daylight_saving() -> None:
    config = ScheduleTriggerConfig(cron="0 9 * * *", timezone="Europe/Paris")
    winter = next_fire_times(config, count=2, after=datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
    assert [t.astimezone(UTC).hour for t in winter] == [8, 8]
    assert winter[0].date().isoformat() == "2026-01-11"
    summer = next_fire_times(config, count=1, after=datetime(2026, 7, 10, 6, 0, tzinfo=UTC))
    assert summer[0].astimezone(UTC).hour == 7 and summer[0].date().isoformat() == "2026-07-10"


def test_interval_fire_times_are_aligned_and_in_the_future() -> None:
    config = ScheduleTriggerConfig(interval=90)
    after = datetime(2026, 3, 1, 0, 0, 10, tzinfo=UTC)
    times = next_fire_times(config, count=3, after=after)
    assert times[0] > after and (times[0] - after).total_seconds() <= 90
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)] == [90, 90]
    assert schedule_config({"type": "event", "config": {}}) is None


# --- webhook signatures -------------------------------------------------------------------

SECRET, OTHER = "whsec_current", "whsec_other"
BODY = json.dumps({"type": "order.paid", "data": {"id": 7}}).encode()


def _hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_orbin_scheme_accepts_what_the_outbound_block_signs() -> None:
    from pydantic import SecretStr

    from blocks.webhook import OrbinWebhook

    block = OrbinWebhook(url="http://example.invalid", signing_secret=SecretStr(SECRET))
    header = block.signature_header(BODY)
    assert signatures.verify_orbin({"orbin-signature": header}, BODY, [OTHER, SECRET])


def test_orbin_scheme_refuses_wrong_stale_malformed_and_missing() -> None:
    now = int(time.time())
    cases = [
        ({"orbin-signature": signatures.orbin_header(OTHER, BODY)}, "does not match"),
        ({"orbin-signature": signatures.orbin_header(SECRET, BODY + b" ")}, "does not match"),
        ({"orbin-signature": signatures.orbin_header(SECRET, BODY, now - 301)}, "5 minutes"),
        ({"orbin-signature": signatures.orbin_header(SECRET, BODY, now + 400)}, "5 minutes"),
        ({"orbin-signature": "v1=abc"}, "malformed"),
        ({}, "missing Orbin-Signature"),
    ]
    for headers, message in cases:
        with pytest.raises(Unauthenticated) as err:
            signatures.verify_orbin(headers, BODY, [SECRET])
        assert message in err.value.message


def test_github_scheme() -> None:
    good = {"x-hub-signature-256": "sha256=" + _hmac(SECRET, BODY)}
    signatures.verify_github(good, BODY, [SECRET])
    for headers, message in [
        ({"x-hub-signature-256": "sha256=" + _hmac(OTHER, BODY)}, "does not match"),
        ({"x-hub-signature-256": _hmac(SECRET, BODY)}, "malformed"),
        ({}, "missing X-Hub-Signature-256"),
    ]:
        with pytest.raises(Unauthenticated) as err:
            signatures.verify_github(headers, BODY, [SECRET])
        assert message in err.value.message


def _slack(secret: str, body: bytes, ts: int) -> dict[str, str]:
    return {
        "x-slack-request-timestamp": str(ts),
        "x-slack-signature": "v0=" + _hmac(secret, f"v0:{ts}:".encode() + body),
    }


def test_slack_scheme() -> None:
    now = int(time.time())
    signatures.verify_slack(_slack(SECRET, BODY, now), BODY, [SECRET])
    for headers, message in [
        (_slack(OTHER, BODY, now), "does not match"),
        (_slack(SECRET, BODY, now - 600), "5 minutes"),
        ({"x-slack-signature": "v0=00"}, "missing"),
    ]:
        with pytest.raises(Unauthenticated) as err:
            signatures.verify_slack(headers, BODY, [SECRET])
        assert message in err.value.message


def stripe_header(secret: str, body: bytes, ts: int | None = None) -> str:
    ts = int(time.time()) if ts is None else ts
    return f"t={ts},v1={_hmac(secret, f'{ts}.'.encode() + body)}"


def test_stripe_scheme_through_the_stripe_sdk() -> None:
    body = json.dumps(
        {"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}
    ).encode()
    event = signatures.verify_stripe(
        {"stripe-signature": stripe_header(SECRET, body)}, body, [OTHER, SECRET]
    )
    assert event.id == "evt_1" and event.type == "invoice.paid"
    for headers, message in [
        ({"stripe-signature": stripe_header(OTHER, body)}, "does not match"),
        ({"stripe-signature": stripe_header(SECRET, body, int(time.time()) - 600)}, "5 minutes"),
        ({"stripe-signature": "garbage"}, "malformed"),
        ({}, "missing Stripe-Signature"),
    ]:
        with pytest.raises(Unauthenticated) as err:
            signatures.verify_stripe(headers, body, [SECRET])
        assert message in err.value.message


def test_derived_workflow_secrets_differ_per_workflow_and_root() -> None:
    a = derive_workflow_secret("root-1", "wf-a")
    assert a.startswith("whsec_") and len(a) > 40
    assert a == derive_workflow_secret("root-1", "wf-a")
    assert a != derive_workflow_secret("root-1", "wf-b")
    assert a != derive_workflow_secret("root-2", "wf-a")
