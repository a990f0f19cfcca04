"""What Stripe's webhooks change in an organization's billing state (tenancy/billing.py has
the plan change itself): the event ids applied once, the subscription's plan, status and
period, invoices paid or failed, the stored customer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenancy.audit import record_audit
from tenancy.billing import LIVE_STATUSES, change_plan, month_bounds
from tenancy.billing_models import StripeEvent
from tenancy.clock import now_ms
from tenancy.models import Organization
from tenancy.plans import DEFAULT_PLAN, plan_for_lookup_key
from tenancy.principal import Principal

# How far along a subscription's life each status is: an older event never moves it back.
_STATUS_ORDER = {"incomplete": 0, "trialing": 1, "active": 2, "past_due": 2, "unpaid": 3}


def claim_stripe_event(session: Session, *, event_id: str, event_type: str) -> bool:
    """Store the event id; False when it was processed before (a redelivery)."""
    if session.get(StripeEvent, event_id) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(StripeEvent(id=event_id, type=event_type))
            session.flush()
    except IntegrityError:
        return False  # the same event delivered concurrently: the other delivery applies it
    return True


def note_stripe_event(
    session: Session, *, event_id: str, organization_id: str | None, outcome: str
):
    session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == event_id)
        .values(organization_id=organization_id, outcome=outcome[:200])
    )


def find_org_for_stripe(
    session: Session, *, org_id: str | None, customer_id: str | None
) -> Organization | None:
    if org_id:
        org = session.get(Organization, org_id)
        if org is not None:
            return org
    if customer_id:
        return session.scalars(
            select(Organization).where(Organization.stripe_customer_id == customer_id)
        ).first()
    return None


def stripe_actor(org: Organization) -> Principal:
    return Principal(org.id, org.slug, org.plan, "stripe")


def apply_subscription(
    session: Session,
    org: Organization,
    sub: dict[str, Any],
    *,
    event_id: str,
    event_created: int,
    deleted: bool = False,
) -> str:
    """A subscription's state from Stripe (created / updated / deleted / after Checkout).

    An event older than the last one applied changes nothing (events may arrive out of
    order); a deletion returns the organization to the free plan. Returns what was done."""
    created_ms = int(event_created) * 1000
    sub_id = sub.get("id")
    status = "canceled" if deleted else str(sub.get("status") or "active")
    if org.billing_event_at and created_ms < org.billing_event_at:
        return "ignored: older than the last subscription change applied"
    same_sub = sub_id and sub_id == org.stripe_subscription_id
    if same_sub and created_ms == org.billing_event_at:
        # Same second: a canceled subscription stays canceled, and no status moves backwards.
        if org.billing_status == "canceled" and not deleted:
            return "ignored: the subscription is canceled"
        if _STATUS_ORDER.get(status, 9) < _STATUS_ORDER.get(org.billing_status or "", -1):
            return "ignored: an earlier state of the subscription"
    if deleted and org.stripe_subscription_id and sub_id != org.stripe_subscription_id:
        return "ignored: not the organization's current subscription"
    if sub.get("customer") and not org.stripe_customer_id:
        org.stripe_customer_id = str(sub["customer"])
    org.billing_event_at = created_ms
    meta = {"stripeEventId": event_id, "subscriptionId": sub_id}
    if deleted or status not in LIVE_STATUSES:
        org.stripe_subscription_id = sub_id or org.stripe_subscription_id  # kept: status canceled
        org.billing_period_start = None
        _calendar_period(org)
        change_plan(
            session,
            org,
            DEFAULT_PLAN,
            actor=stripe_actor(org),
            reason="stripe",
            status=status,
            metadata=meta,
        )
        return f"plan {DEFAULT_PLAN} (subscription {status})"
    plan = plan_for_lookup_key(_lookup_key(sub))
    if plan is None:
        return f"ignored: no plan has the price lookup_key {_lookup_key(sub)!r}"
    org.stripe_subscription_id = sub_id
    _subscription_period(org, sub)
    change_plan(
        session,
        org,
        plan.name,
        actor=stripe_actor(org),
        reason="stripe",
        status=status,
        metadata=meta,
    )
    return f"plan {plan.name} ({status})"


def _lookup_key(sub: dict[str, Any]) -> str | None:
    items = ((sub.get("items") or {}).get("data")) or []
    for item in items:
        price = item.get("price") or {}
        if price.get("lookup_key"):
            return str(price["lookup_key"])
    return None


def _subscription_period(org: Organization, sub: dict[str, Any]) -> None:
    """The subscription's billing period (on the item in newer API versions). A renewal (a new
    period starting when the stored one ends, or later) resets the counter."""
    items = ((sub.get("items") or {}).get("data")) or [{}]
    start = sub.get("current_period_start") or items[0].get("current_period_start")
    end = sub.get("current_period_end") or items[0].get("current_period_end")
    if not start or not end:
        return
    start_ms, end_ms = int(start) * 1000, int(end) * 1000
    if org.usage_reset_at and start_ms >= org.usage_reset_at:
        org.usage_current_executions = 0
    org.billing_period_start = start_ms
    org.usage_reset_at = end_ms


def _calendar_period(org: Organization) -> None:
    """Back to calendar months: the current month ends the period (the counter is kept)."""
    now = now_ms()
    if org.usage_reset_at and org.usage_reset_at > now:
        org.usage_reset_at = min(org.usage_reset_at, month_bounds(now)[1])


def mark_payment(
    session: Session, org: Organization, *, paid: bool, event_id: str, invoice: dict[str, Any]
) -> str:
    """``invoice.paid`` / ``invoice.payment_failed``: the subscription's status, audited."""
    if not org.stripe_subscription_id and not paid:
        status = org.billing_status
    else:
        status = "active" if paid else "past_due"
    before = org.billing_status
    if status is not None:
        org.billing_status = status
    record_audit(
        session,
        stripe_actor(org),
        "billing.invoice_paid" if paid else "billing.payment_failed",
        "invoice",
        str(invoice.get("id") or ""),
        {"stripeEventId": event_id, "from": before, "to": org.billing_status},
    )
    return f"status {org.billing_status}"


def store_customer(session: Session, *, organization_id: str, customer_id: str) -> str:
    """Keep the first customer id stored (two concurrent Checkouts agree on one)."""
    session.execute(
        update(Organization)
        .where(Organization.id == organization_id, Organization.stripe_customer_id.is_(None))
        .values(stripe_customer_id=customer_id)
    )
    stored = session.scalar(
        select(Organization.stripe_customer_id).where(Organization.id == organization_id)
    )
    return stored or customer_id
