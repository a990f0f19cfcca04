"""Billing and usage: the plan, the period's usage, the series, Stripe Checkout, the portal,
invoices, and Stripe's signed webhooks."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ingest_api.body import read_body
from ingest_api.deps import CurrentPrincipal, SessionDep
from ingest_api.schemas.common import Page
from orbin_flows.billing import stripe_api
from orbin_flows.billing import webhooks as stripe_webhooks
from tenancy import billing as billing_repo
from tenancy import metering

router = APIRouter(tags=["billing"])


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=64, description="the plan to subscribe to")


class PortalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Invoice(BaseModel):
    id: str
    number: str | None = None
    status: str | None = None
    amountDue: int | None = None
    amountPaid: int | None = None
    currency: str | None = None
    createdAt: int | None = Field(None, description="ms since the epoch")
    hostedInvoiceUrl: str | None = None
    pdf: str | None = None


class InvoicesPage(Page):
    data: list[Invoice]


class SessionUrl(BaseModel):
    url: str
    id: str


@router.get("/v1/billing", summary="The plan, its status, the period and its usage")
def get_billing(principal: CurrentPrincipal, session: SessionDep) -> dict[str, Any]:
    return billing_repo.billing_overview(
        session, principal, stripe_configured=stripe_api.configured()
    )


@router.get("/v1/usage", summary="Executions per day or per workflow (the usage charts)")
def get_usage(
    principal: CurrentPrincipal,
    session: SessionDep,
    from_: Annotated[str | None, Query(alias="from", description="date, ISO time or ms")] = None,
    to: Annotated[str | None, Query(description="date (inclusive), ISO time or ms")] = None,
    groupBy: Annotated[Literal["day", "workflow"], Query()] = "day",  # noqa: N803
) -> dict[str, Any]:
    return metering.usage_series(
        session,
        principal,
        start=metering.parse_instant(from_, field="from"),
        end=metering.parse_instant(to, field="to", end=True),
        group_by=groupBy,
    )


@router.post("/v1/billing/checkout", response_model=SessionUrl, summary="A Stripe Checkout session")
async def post_checkout(body: CheckoutIn, principal: CurrentPrincipal) -> dict[str, str]:
    return await run_in_threadpool(stripe_api.create_checkout, principal, body.plan)


@router.post("/v1/billing/portal", response_model=SessionUrl, summary="A Stripe portal session")
async def post_portal(principal: CurrentPrincipal, body: PortalIn | None = None) -> dict[str, str]:
    return await run_in_threadpool(stripe_api.create_portal, principal)


@router.get(
    "/v1/billing/invoices",
    response_model=InvoicesPage,
    summary="The organization's Stripe invoices, newest first",
)
async def get_invoices(
    principal: CurrentPrincipal,
    limit: int = Query(24, ge=1, le=100),
    cursor: str | None = Query(None, max_length=100, description="nextCursor of the last page"),
) -> dict[str, Any]:
    return await run_in_threadpool(
        partial(stripe_api.list_invoices, principal, limit=limit, cursor=cursor)
    )


@router.post(
    "/api/webhooks/stripe",
    summary="Stripe's webhooks (signed with STRIPE_WEBHOOK_SECRET)",
    responses={400: {"description": "wrong, missing or stale signature"}},
)
async def post_stripe_webhook(request: Request) -> dict[str, Any]:
    body = await read_body(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    got = await run_in_threadpool(stripe_webhooks.receive, headers, body)
    return {
        "received": True,
        "eventId": got.event_id,
        "type": got.type,
        "duplicate": got.duplicate,
        "outcome": got.outcome,
    }
