"""Stripe's webhooks (``POST /api/webhooks/stripe``): verified by the SDK, applied once.

Handled: ``checkout.session.completed``, ``customer.subscription.created|updated|deleted``,
``invoice.paid``, ``invoice.payment_failed``. The organization is found by
``metadata.orbin_org_id`` or the stored customer id; the plan by the subscription item's price
``lookup_key``. The event id is stored in the transaction that applies the event, so a
redelivery (even a concurrent one) answers 200 and changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from orbin_flows.billing import stripe_api
from tenancy import billing
from tenancy import stripe_state as repo
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.errors import OrbinError
from tenancy.metering import notify_owners

log = logging.getLogger("orbin.billing")

HANDLED = {
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
}


class BadSignature(OrbinError):
    """400: the body is not signed with the webhook secret, or the signature is stale."""

    code = "invalid_signature"


@dataclass(frozen=True)
class Received:
    event_id: str
    type: str
    duplicate: bool
    outcome: str


def verify(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    import stripe

    secret = get_settings().stripe_webhook_secret
    if secret is None:
        raise billing.BillingNotConfigured(
            "Stripe webhooks need STRIPE_WEBHOOK_SECRET (the endpoint's whsec_... secret)"
        )
    header = headers.get("stripe-signature")
    if not header:
        raise BadSignature("missing Stripe-Signature header")
    try:
        stripe.Webhook.construct_event(body, header, secret.get_secret_value())
    except stripe.SignatureVerificationError as exc:
        raise BadSignature(
            "the Stripe-Signature does not match the body and STRIPE_WEBHOOK_SECRET, or is "
            "older than 5 minutes"
        ) from exc
    except ValueError as exc:
        raise BadSignature(f"the body is not a Stripe event: {exc}") from exc
    event = json.loads(body)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise BadSignature("the body is not a Stripe event (no id or type)")
    return event


def receive(headers: dict[str, str], body: bytes) -> Received:
    event = verify(headers, body)
    event_id, kind = str(event["id"]), str(event["type"])
    obj = (event.get("data") or {}).get("object") or {}
    created = int(event.get("created") or 0)
    # After Checkout the subscription is read from Stripe, outside the transaction.
    sub = None
    if kind == "checkout.session.completed" and obj.get("subscription"):
        sub_id = obj["subscription"]
        sub = sub_id if isinstance(sub_id, dict) else stripe_api.retrieve_subscription(sub_id)
    with session_scope() as session:
        if not repo.claim_stripe_event(session, event_id=event_id, event_type=kind):
            return Received(event_id, kind, True, "already processed")
        if kind not in HANDLED:
            repo.note_stripe_event(
                session, event_id=event_id, organization_id=None, outcome="ignored"
            )
            return Received(event_id, kind, False, "ignored: not an event Orbin handles")
        meta = obj.get("metadata") or {}
        if sub and not meta.get("orbin_org_id"):
            meta = sub.get("metadata") or {}
        customer = obj.get("customer")
        if isinstance(customer, dict):
            customer = customer.get("id")
        org = repo.find_org_for_stripe(
            session,
            org_id=meta.get("orbin_org_id") or obj.get("client_reference_id"),
            customer_id=customer,
        )
        if org is None:
            outcome = "ignored: no organization has this metadata.orbin_org_id or customer"
            repo.note_stripe_event(
                session, event_id=event_id, organization_id=None, outcome=outcome
            )
            return Received(event_id, kind, False, outcome)
        outcome = _apply(session, org, kind, obj, sub, event_id=event_id, created=created)
        repo.note_stripe_event(session, event_id=event_id, organization_id=org.id, outcome=outcome)
    log.info("Stripe event %s (%s): %s", event_id, kind, outcome)
    return Received(event_id, kind, False, outcome)


def _apply(session, org, kind, obj, sub, *, event_id: str, created: int) -> str:  # noqa: ANN001
    if kind == "checkout.session.completed":
        if obj.get("customer") and not org.stripe_customer_id:
            org.stripe_customer_id = str(obj["customer"])
        if not sub:
            return "checkout completed (no subscription yet)"
        return repo.apply_subscription(session, org, sub, event_id=event_id, event_created=created)
    if kind.startswith("customer.subscription."):
        return repo.apply_subscription(
            session,
            org,
            obj,
            event_id=event_id,
            event_created=created,
            deleted=kind.endswith(".deleted"),
        )
    paid = kind == "invoice.paid"
    outcome = repo.mark_payment(session, org, paid=paid, event_id=event_id, invoice=obj)
    if not paid:
        amount = obj.get("amount_due")
        due = f" ({amount / 100:.2f} {str(obj.get('currency') or '').upper()})" if amount else ""
        notify_owners(
            session,
            org,
            kind="payment_failed",
            title=f"{org.name}: a payment failed",
            text=(
                f"The payment of invoice {obj.get('number') or obj.get('id')}{due} for "
                f"{org.name} failed; the subscription is past due. Update the payment method "
                "in the billing portal (Billing > Manage payment)."
            ),
        )
    return outcome
