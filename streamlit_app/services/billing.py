"""Billing actions through Stripe (``orbin_flows.billing.stripe_api``): Checkout for a plan,
the customer portal, invoices. Owners change the plan; admins read invoices; without
``STRIPE_SECRET_KEY`` none of it is offered (the plan is the operator's, ``orbin org
set-plan``). Each call opens its own short transactions around Stripe's answer."""

from __future__ import annotations

from dataclasses import dataclass

from orbin_flows.billing import stripe_api
from streamlit_app.services.base import Actor, Outcome, attempt, principal_of


@dataclass(frozen=True)
class Invoice:
    id: str
    number: str | None
    status: str | None
    amount_due: int | None
    amount_paid: int | None
    currency: str | None
    created: int | None  # ms since the epoch
    url: str | None


def stripe_configured() -> bool:
    return stripe_api.configured()


def checkout(actor: Actor, plan: str) -> Outcome:
    """A Stripe Checkout session for the plan; the page sends the owner there."""
    return attempt(
        "Checkout is ready.",
        lambda: stripe_api.create_checkout(principal_of(actor), plan)["url"],
    )


def portal(actor: Actor) -> Outcome:
    return attempt(
        "The payment portal is ready.",
        lambda: stripe_api.create_portal(principal_of(actor))["url"],
    )


def invoices(actor: Actor) -> Outcome:
    def go() -> list[Invoice]:
        found = stripe_api.list_invoices(principal_of(actor))["data"]
        return [
            Invoice(
                i["id"],
                i.get("number"),
                i.get("status"),
                i.get("amountDue"),
                i.get("amountPaid"),
                i.get("currency"),
                i.get("createdAt"),
                i.get("hostedInvoiceUrl"),
            )
            for i in found
        ]

    return attempt("", go)
