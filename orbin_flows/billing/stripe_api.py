"""Stripe through its SDK: Checkout and Customer Portal sessions, invoices, meter events.

``STRIPE_SECRET_KEY`` switches it on; ``ORBIN_STRIPE_API_BASE`` points the SDK at another
server speaking Stripe's protocol (the tests' local one). Without a key every call here raises
``BillingNotConfigured`` (503 ``billing_not_configured``).
"""

from __future__ import annotations

import logging
from typing import Any

from tenancy import billing as repo
from tenancy import stripe_state
from tenancy.audit import record_audit
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.errors import InvalidInput, Unavailable
from tenancy.plans import DEFAULT_PLAN, require_plan
from tenancy.principal import Principal

log = logging.getLogger("orbin.billing")


class StripeUnavailable(Unavailable):
    code = "stripe_unavailable"


def configured() -> bool:
    return get_settings().stripe_secret_key is not None


def client() -> Any:
    import stripe

    s = get_settings()
    repo.require_stripe(s.stripe_secret_key is not None)
    assert s.stripe_secret_key is not None
    return stripe.StripeClient(
        s.stripe_secret_key.get_secret_value(),
        base_addresses={"api": s.stripe_api_base.rstrip("/")},
        max_network_retries=2,  # the SDK retries with an idempotency key of its own
    )


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    import stripe

    try:
        return fn(*args, **kwargs)
    except stripe.InvalidRequestError as exc:
        raise InvalidInput(f"Stripe refused {what}: {exc.user_message or exc}") from exc
    except stripe.StripeError as exc:
        log.warning("Stripe call failed (%s): %s", what, type(exc).__name__)
        raise StripeUnavailable(f"Stripe did not answer {what}; try again shortly") from exc


def _d(obj: Any) -> dict[str, Any]:
    """A Stripe object as a plain dict (the SDK's objects are not dicts)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _return_url() -> str:
    s = get_settings()
    return s.billing_return_url or f"{s.public_dashboard_url}/billing"


def _customer(stripe_client: Any, principal: Principal) -> str:
    """The organization's Stripe customer, created once (its id stored)."""
    with session_scope() as session:
        info = repo.read_customer_info(session, principal.organization_id)
    if info.customer_id:
        return info.customer_id
    org_id = info.organization_id
    params: dict[str, Any] = {"name": info.name, "metadata": {"orbin_org_id": org_id}}
    if info.email:
        params["email"] = info.email
    customer = _call(
        "creating the customer",
        stripe_client.v1.customers.create,
        params=params,
        options={"idempotency_key": f"orbin-customer-{org_id}"},
    )
    with session_scope() as session:
        return stripe_state.store_customer(session, organization_id=org_id, customer_id=customer.id)


def _price_for(stripe_client: Any, lookup_key: str) -> Any:
    prices = _call(
        "listing prices",
        stripe_client.v1.prices.list,
        params={"lookup_keys": [lookup_key], "active": True, "limit": 1},
    )
    for price in prices.data:
        if _d(price).get("lookup_key") == lookup_key:
            return _d(price)
    raise InvalidInput(
        f"no active Stripe price has the lookup_key {lookup_key!r}; create one in Stripe "
        "or set the plan's stripeLookupKey",
        details=[{"field": "plan", "lookupKey": lookup_key}],
    )


def create_checkout(principal: Principal, plan_name: str) -> dict[str, str]:
    """A Checkout session (mode subscription) for the plan's price; the session and its
    subscription carry ``metadata[orbin_org_id]``."""
    repo.require_billing_write(principal)
    plan = require_plan(plan_name)
    if plan.name == DEFAULT_PLAN:
        raise InvalidInput(
            f"the {DEFAULT_PLAN} plan needs no Checkout: cancel the subscription in the portal",
            details=[{"field": "plan"}],
        )
    sc = client()
    customer = _customer(sc, principal)
    price = _price_for(sc, plan.lookup_key)
    with session_scope() as s:
        current = repo.read_customer_info(s, principal.organization_id).subscription_id
    if current:
        return _switch(sc, principal, current, plan.name, price)
    item: dict[str, Any] = {"price": price["id"]}
    recurring = price.get("recurring") or {}
    if recurring.get("usage_type") != "metered":
        item["quantity"] = 1
    meta = {"orbin_org_id": principal.organization_id, "orbin_plan": plan.name}
    back = _return_url()
    session = _call(
        "creating the Checkout session",
        sc.v1.checkout.sessions.create,
        params={
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": principal.organization_id,
            "line_items": [item],
            "success_url": f"{back}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{back}?checkout=canceled",
            "metadata": meta,
            "subscription_data": {"metadata": meta},
        },
    )
    with session_scope() as s:
        record_audit(
            s,
            principal,
            "billing.checkout_started",
            "organization",
            principal.organization_id,
            {"plan": plan.name, "checkoutSessionId": session.id},
        )
    return {"url": session.url, "id": session.id}


def _switch(
    sc: Any, principal: Principal, subscription_id: str, plan_name: str, price: dict[str, Any]
) -> dict[str, str]:
    """An organization already subscribed changes its subscription's price (prorated) rather
    than buying a second one; Stripe's ``customer.subscription.updated`` then sets the plan."""
    sub = _d(_call("reading the subscription", sc.v1.subscriptions.retrieve, subscription_id))
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        raise InvalidInput("the organization's Stripe subscription has no item to change")
    meta = {"orbin_org_id": principal.organization_id, "orbin_plan": plan_name}
    _call(
        "changing the subscription's plan",
        sc.v1.subscriptions.update,
        subscription_id,
        params={
            "items": [{"id": items[0]["id"], "price": price["id"]}],
            "proration_behavior": "create_prorations",
            "metadata": meta,
        },
    )
    with session_scope() as s:
        record_audit(
            s,
            principal,
            "billing.subscription_switched",
            "organization",
            principal.organization_id,
            {"plan": plan_name, "subscriptionId": subscription_id},
        )
    return {"url": f"{_return_url()}?checkout=switched", "id": subscription_id}


def create_portal(principal: Principal) -> dict[str, str]:
    """A Customer Portal session: payment methods, invoices, cancellation."""
    repo.require_billing_write(principal)
    sc = client()
    customer = _customer(sc, principal)
    session = _call(
        "creating the portal session",
        sc.v1.billing_portal.sessions.create,
        params={"customer": customer, "return_url": _return_url()},
    )
    return {"url": session.url, "id": session.id}


def list_invoices(
    principal: Principal, *, limit: int = 24, cursor: str | None = None
) -> dict[str, Any]:
    """A page of the customer's invoices, newest first; ``cursor`` is the last invoice id of
    the previous page (Stripe's ``starting_after``)."""
    repo.require_billing_read(principal)
    sc = client()
    with session_scope() as session:
        customer = repo.read_customer_info(session, principal.organization_id).customer_id
    if not customer:
        return {"data": [], "nextCursor": None, "hasMore": False}
    params: dict[str, Any] = {"customer": customer, "limit": max(1, min(limit, 100))}
    if cursor:
        params["starting_after"] = cursor
    page = _call("listing invoices", sc.v1.invoices.list, params=params)
    data = [
        {
            "id": inv.get("id"),
            "number": inv.get("number"),
            "status": inv.get("status"),
            "amountDue": inv.get("amount_due"),
            "amountPaid": inv.get("amount_paid"),
            "currency": inv.get("currency"),
            "createdAt": inv["created"] * 1000 if isinstance(inv.get("created"), int) else None,
            "hostedInvoiceUrl": inv.get("hosted_invoice_url"),
            "pdf": inv.get("invoice_pdf"),
        }
        for inv in map(_d, page.data)
    ]
    more = bool(getattr(page, "has_more", False)) and bool(data)
    return {"data": data, "nextCursor": data[-1]["id"] if more else None, "hasMore": more}


def retrieve_subscription(subscription_id: str) -> dict[str, Any] | None:
    """The subscription as Stripe has it now (after Checkout), or None if Stripe is not set."""
    if not configured():
        return None
    sub = _call("reading the subscription", client().v1.subscriptions.retrieve, subscription_id)
    return _d(sub)


def send_meter_event(*, event_name: str, customer_id: str, run_id: str, timestamp: int) -> None:
    """One execution to Stripe's meter; ``identifier`` = the run id, so a retry is not billed
    twice (Stripe drops a repeated identifier)."""
    client().v1.billing.meter_events.create(
        params={
            "event_name": event_name,
            "identifier": run_id,
            "timestamp": timestamp,
            "payload": {"stripe_customer_id": customer_id, "value": "1"},
        }
    )
