"""Runs of metered plans (``overage: true``) waiting to be reported to Stripe's meter events.

Each run gets one row (its id is the key, and Stripe's ``identifier``), queued off the hot path
by the worker from the runs table; a failed report is retried with exponential backoff."""

from __future__ import annotations

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session

from tenancy.billing_models import MeterReport
from tenancy.clock import now_ms
from tenancy.models import Organization, WorkflowRun
from tenancy.plans import load_plans

MAX_BACKOFF_MS = 3_600_000


def queue_new_runs(session: Session, *, limit: int = 500) -> int:
    """Queue the runs of metered organizations (with a Stripe customer) created this period."""
    metered = [p.name for p in load_plans().values() if p.overage]
    if not metered:
        return 0
    orgs = session.execute(
        select(
            Organization.id, Organization.stripe_customer_id, Organization.billing_period_start
        ).where(Organization.plan.in_(metered), Organization.stripe_customer_id.is_not(None))
    ).all()
    queued = 0
    for org_id, customer, since in orgs:
        rows = session.execute(
            select(WorkflowRun.id, WorkflowRun.created_at)
            .where(
                WorkflowRun.organization_id == org_id,
                WorkflowRun.created_at >= (since or 0),
                ~exists().where(MeterReport.run_id == WorkflowRun.id),
            )
            .order_by(WorkflowRun.created_at)
            .limit(limit - queued)
        ).all()
        if rows:
            session.execute(
                insert(MeterReport),
                [
                    {
                        "run_id": rid,
                        "organization_id": org_id,
                        "stripe_customer_id": customer,
                        "created_at": created,
                        "attempts": 0,
                        "next_attempt_at": 0,
                    }
                    for rid, created in rows
                ],
            )
            queued += len(rows)
        if queued >= limit:
            break
    return queued


def read_due(session: Session, *, limit: int = 100) -> list[MeterReport]:
    reports = list(
        session.scalars(
            select(MeterReport)
            .where(MeterReport.reported_at.is_(None), MeterReport.next_attempt_at <= now_ms())
            .order_by(MeterReport.next_attempt_at)
            .limit(limit)
        )
    )
    for r in reports:
        session.expunge(r)
    return reports


def mark_reported(session: Session, run_ids: list[str]) -> None:
    if run_ids:
        session.execute(
            update(MeterReport).where(MeterReport.run_id.in_(run_ids)).values(reported_at=now_ms())
        )


def mark_failed(session: Session, report: MeterReport, error: str) -> None:
    delay = min(MAX_BACKOFF_MS, 1000 * 2 ** min(report.attempts, 20))
    session.execute(
        update(MeterReport)
        .where(MeterReport.run_id == report.run_id)
        .values(
            attempts=MeterReport.attempts + 1,
            next_attempt_at=now_ms() + delay,
            last_error=error[:500],
        )
    )
