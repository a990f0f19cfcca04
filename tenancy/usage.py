"""Monthly execution usage against the plan's limit."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tenancy.clock import now_ms
from tenancy.errors import ExecutionLimitReached
from tenancy.models import Organization
from tenancy.plans import get_plan


def _next_month_ms(now: int) -> int:
    d = datetime.fromtimestamp(now / 1000, UTC)
    days = calendar.monthrange(d.year, d.month)[1]
    first_next = datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() + days * 86400
    return int(first_next * 1000)


def reserve_executions(session: Session, *, organization_id: str, count: int) -> None:
    """Count ``count`` new runs; refuse them all if the month's limit would be passed."""
    now = now_ms()
    # Start a new period when the old one is over (a conditional update: one winner).
    session.execute(
        update(Organization)
        .where(Organization.id == organization_id, Organization.usage_reset_at <= now)
        # Until Stripe announces the subscription's next period, the calendar month counts.
        .values(
            usage_current_executions=0,
            usage_reset_at=_next_month_ms(now),
            billing_period_start=None,
        )
    )
    res = session.execute(
        update(Organization)
        .where(
            Organization.id == organization_id,
            Organization.usage_current_executions + count <= Organization.usage_limit_executions,
        )
        .values(usage_current_executions=Organization.usage_current_executions + count)
    )
    if res.rowcount == 0:
        org = session.get(Organization, organization_id)
        if org is not None and get_plan(org.plan).overage:  # past the limit, metered
            session.execute(
                update(Organization)
                .where(Organization.id == organization_id)
                .values(usage_current_executions=Organization.usage_current_executions + count)
            )
            return
        limit = org.usage_limit_executions if org else 0
        raise ExecutionLimitReached(
            f"the monthly execution limit ({limit}) of this organization's plan is reached; "
            "upgrade the plan or wait for the next period",
        )
