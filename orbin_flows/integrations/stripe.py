"""Stripe through its own SDK (``stripe.StripeClient``), against ``apiBase`` when set.

Each step call carries an idempotency key (``orbin:<run>:<step>``): a retried attempt cannot
create a second customer or charge twice. Every request goes through the egress proxy
(``http.proxied``), on a requests Session that ignores the environment's proxies."""

from __future__ import annotations

from typing import Any

import stripe

from orbin_flows.integrations import http
from orbin_flows.integrations.errors import ProviderError, retry_after_seconds
from tenancy.integrations import ResolvedIntegration

DEFAULT_API_BASE = "https://api.stripe.com"


def client(integration: ResolvedIntegration, proxy: str) -> stripe.StripeClient:
    base = http.provider_url(str(integration.config.get("apiBase") or DEFAULT_API_BASE).rstrip("/"))
    return stripe.StripeClient(
        integration.credentials["secretKey"],
        base_addresses={"api": base},
        max_network_retries=0,
        http_client=stripe.RequestsClient(session=http.requests_session(proxy), proxy=proxy),
    )


def _error(what: str, exc: stripe.StripeError) -> ProviderError:
    message = f"Stripe {what}: {exc.user_message or exc}"
    status = exc.http_status or 0
    headers = exc.headers or {}
    return ProviderError(
        message,
        retryable=isinstance(exc, stripe.APIConnectionError) or status == 429 or status >= 500,
        credential=isinstance(exc, stripe.AuthenticationError),
        retry_after=retry_after_seconds(headers.get("retry-after")),
    )


def test(integration: ResolvedIntegration) -> str:
    try:
        with http.proxied() as proxy:
            balance = client(integration, proxy).v1.balance.retrieve()
    except stripe.StripeError as exc:
        raise _error("balance", exc) from exc
    available = ", ".join(f"{b.amount} {b.currency}" for b in (balance.available or []))
    return f"balance available: {available or 'none'}"


def _create(
    integration: ResolvedIntegration,
    resource: str,
    what: str,
    params: dict[str, Any],
    idempotency_key: str | None,
) -> dict[str, Any]:
    """``client.v1.<resource>.create`` as a plain dict, with the step's key."""
    options = {"idempotency_key": idempotency_key} if idempotency_key else {}
    try:
        with http.proxied() as proxy:
            service = getattr(client(integration, proxy).v1, resource)
            return service.create(params=params, options=options).to_dict()
    except stripe.StripeError as exc:
        raise _error(what, exc) from exc


def create_customer(
    integration: ResolvedIntegration,
    *,
    email: str | None,
    name: str | None,
    description: str | None,
    metadata: dict[str, str] | None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    params = {
        k: v
        for k, v in {
            "email": email,
            "name": name,
            "description": description,
            "metadata": metadata,
        }.items()
        if v is not None
    }
    data = _create(integration, "customers", "create customer", params, idempotency_key)
    return {"id": data["id"], "email": data.get("email")}


def create_invoice_item(
    integration: ResolvedIntegration,
    *,
    customer: str,
    amount: int,
    currency: str,
    description: str | None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"customer": customer, "amount": amount, "currency": currency}
    if description is not None:
        params["description"] = description
    data = _create(integration, "invoice_items", "create invoice item", params, idempotency_key)
    return {"id": data["id"], "amount": data.get("amount"), "currency": data.get("currency")}
