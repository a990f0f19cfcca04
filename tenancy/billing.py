"""Billing state of an organization: its plan, subscription, period and the changes to them.

A plan change (Stripe's webhooks, or ``orbin org set-plan``) takes effect in its transaction:
the monthly limit (``usage_limit_executions``), the rate limits (read from the plan at each
authentication) and, through ``pool_concurrency = NULL``, the Prefect work pool's concurrency
limit, which the worker writes to Prefect within about two seconds (orbin_flows/billing/).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tenancy.audit import record_audit
from tenancy.clock import now_ms
from tenancy.errors import NotFound, PermissionDenied, Unavailable
from tenancy.keys import forget_cached_principals
from tenancy.models import Organization, OrganizationMember, User
from tenancy.orgs import read_organization_by_slug
from tenancy.plans import get_plan, require_plan
from tenancy.principal import ROLE_RANK, Principal

# Subscription statuses under which the subscribed plan is in force.
LIVE_STATUSES = {"active", "trialing", "past_due"}


class BillingNotConfigured(Unavailable):
    code = "billing_not_configured"


# --- who may ------------------------------------------------------------------------------


def require_billing_read(principal: Principal) -> None:
    """Admins and owners, secret keys, restricted keys with ``billing:read``."""
    _require(principal, "billing:read", "admin")


def require_billing_write(principal: Principal) -> None:
    """Owners, secret keys, restricted keys with ``billing:write``."""
    _require(principal, "billing:write", "owner")


def _require(principal: Principal, permission: str, role: str) -> None:
    if principal.actor_type == "system":
        return
    if principal.actor_type == "api":
        if principal.key_type == "secret" or (
            principal.key_type == "restricted" and principal.can(permission)
        ):
            return
        raise PermissionDenied(f"a {principal.key_type} key may not do this (needs {permission})")
    if ROLE_RANK.get(principal.role or "", 0) < ROLE_RANK[role]:
        raise PermissionDenied(f"billing needs the {role} role or higher")


# --- the period -----------------------------------------------------------------------------


def month_bounds(now: int) -> tuple[int, int]:
    d = datetime.fromtimestamp(now / 1000, UTC)
    start = datetime(d.year, d.month, 1, tzinfo=UTC)
    days = calendar.monthrange(d.year, d.month)[1]
    return int(start.timestamp() * 1000), int(start.timestamp() * 1000) + days * 86_400_000


@dataclass(frozen=True)
class Period:
    start: int
    end: int
    executions: int


def current_period(org: Organization, now: int | None = None) -> Period:
    """The period in force: the subscription's when it set one, else the calendar month. The
    counter of a period that is over counts 0 (the next reservation resets it)."""
    now = now_ms() if now is None else now
    if org.usage_reset_at and org.usage_reset_at > now:
        end = org.usage_reset_at
        start = org.billing_period_start
        if not start or start >= end:
            start = month_bounds(end - 1)[0]
        return Period(start, end, org.usage_current_executions or 0)
    start, end = month_bounds(now)
    return Period(start, end, 0)


def usage_percent(executions: int, limit: int) -> float:
    if limit <= 0:
        return 100.0
    return round(executions * 100.0 / limit, 2)


def billing_overview(
    session: Session, principal: Principal, *, stripe_configured: bool
) -> dict[str, Any]:
    """What ``GET /v1/billing`` answers."""
    require_billing_read(principal)
    org = _org(session, principal.organization_id)
    plan = get_plan(org.plan)
    period = current_period(org)
    return {
        "organizationId": org.id,
        "plan": plan.name,
        "status": org.billing_status or "active",
        "period": {"start": period.start, "end": period.end},
        "usage": {
            "executions": period.executions,
            "limit": org.usage_limit_executions,
            "percent": usage_percent(period.executions, org.usage_limit_executions),
            "overage": plan.overage,
        },
        "limits": {
            "monthlyExecutions": plan.monthly_executions,
            "requestsPerMinutePerKey": plan.requests_per_minute_per_key,
            "requestsPerMinutePerOrg": plan.requests_per_minute_per_org,
            "concurrency": plan.concurrency,
            "retentionDays": plan.retention_days,
            "members": plan.members,
            "integrations": plan.integrations,
        },
        "stripe": {
            "configured": stripe_configured,
            "customerId": org.stripe_customer_id,
            "subscriptionId": org.stripe_subscription_id,
        },
    }


def _org(session: Session, organization_id: str) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("organization not found")
    return org


# --- plan changes ----------------------------------------------------------------------------


def change_plan(
    session: Session,
    org: Organization,
    plan_name: str,
    *,
    actor: Principal,
    reason: str,
    status: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> bool:
    """Put ``plan_name`` in force for ``org`` at once; audited. True when something changed."""
    plan = require_plan(plan_name)
    before = (org.plan, org.billing_status)
    org.plan = plan.name
    org.usage_limit_executions = plan.monthly_executions
    if status is not None:
        org.billing_status = status
    org.pool_concurrency = None  # the worker writes the plan's figure to the Prefect pool
    changed = before != (org.plan, org.billing_status)
    if changed:
        record_audit(
            session,
            actor,
            "billing.plan_changed",
            "organization",
            org.id,
            {"from": before[0], "to": plan.name, "status": org.billing_status, "reason": reason}
            | (metadata or {}),
        )
    session.flush()
    forget_cached_principals()  # this process's rate limits follow at once; others within 5 s
    return changed


def set_plan_by_slug(session: Session, *, slug: str, plan: str) -> Organization:
    """``orbin org set-plan``: the operator's change, without Stripe."""
    org = read_organization_by_slug(session, slug)
    actor = Principal(org.id, org.slug, org.plan, "system")
    change_plan(session, org, plan, actor=actor, reason="operator")
    return org


def sync_plan_limits(session: Session) -> int:
    """At start: every organization's monthly limit from the plans in force (the file may have
    changed); pools whose figure differs are marked for the worker. Returns the changed count."""
    changed = 0
    for org in session.scalars(select(Organization)):
        plan = get_plan(org.plan)
        if org.usage_limit_executions != plan.monthly_executions:
            org.usage_limit_executions = plan.monthly_executions
            changed += 1
        if org.pool_concurrency != plan.concurrency:
            org.pool_concurrency = None
    return changed


@dataclass(frozen=True)
class PoolTarget:
    organization_id: str
    slug: str
    plan: str
    concurrency: int
    code_pool_type: str | None = None  # its code flows' pool too (tenancy/orgs.py)


def read_pools_to_sync(session: Session, *, everything: bool = False) -> list[PoolTarget]:
    """Organizations whose Prefect pool has not been given their plan's concurrency."""
    query = select(Organization.id, Organization.slug, Organization.plan, Organization.settings)
    if not everything:
        query = query.where(Organization.pool_concurrency.is_(None))
    return [
        PoolTarget(
            oid, slug, plan, get_plan(plan).concurrency, (settings or {}).get("codePoolType")
        )
        for oid, slug, plan, settings in session.execute(query.limit(None if everything else 200))
    ]


def mark_pool_synced(session: Session, target: PoolTarget) -> None:
    """Only if the plan is still the one written (a change meanwhile is synced next time)."""
    session.execute(
        update(Organization)
        .where(Organization.id == target.organization_id, Organization.plan == target.plan)
        .values(pool_concurrency=target.concurrency)
    )


# --- who hears about it ----------------------------------------------------------------------


def owner_emails(session: Session, organization_id: str) -> list[str]:
    """The owners' e-mail addresses and the organization's billing e-mail, each once."""
    rows = session.scalars(
        select(User.email)
        .join(OrganizationMember, OrganizationMember.user_id == User.id)
        .where(
            OrganizationMember.organization_id == organization_id,
            OrganizationMember.role == "owner",
        )
        .order_by(User.email)
    )
    emails = list(dict.fromkeys(rows))
    org = session.get(Organization, organization_id)
    if org is not None and org.billing_email and org.billing_email not in emails:
        emails.append(org.billing_email)
    return emails


@dataclass(frozen=True)
class CustomerInfo:
    organization_id: str
    name: str
    customer_id: str | None
    email: str | None  # the billing e-mail, else the first owner's
    subscription_id: str | None = None  # a live subscription: a plan change switches it


def read_customer_info(session: Session, organization_id: str) -> CustomerInfo:
    org = _org(session, organization_id)
    emails = owner_emails(session, org.id)
    live = org.billing_status in LIVE_STATUSES and org.stripe_subscription_id
    return CustomerInfo(
        org.id,
        org.name,
        org.stripe_customer_id,
        org.billing_email or (emails or [None])[0],
        org.stripe_subscription_id if live else None,
    )


def owner_ids(session: Session, organization_id: str) -> list[str]:
    return list(
        session.scalars(
            select(OrganizationMember.user_id).where(
                OrganizationMember.organization_id == organization_id,
                OrganizationMember.role == "owner",
            )
        )
    )


def require_stripe(configured: bool) -> None:
    if not configured:
        raise BillingNotConfigured(
            "billing runs in local mode: set STRIPE_SECRET_KEY (and STRIPE_WEBHOOK_SECRET for "
            "webhooks; ORBIN_STRIPE_API_BASE for a server other than Stripe's) to use Stripe; "
            "without Stripe, operators set plans with `orbin org set-plan`"
        )
