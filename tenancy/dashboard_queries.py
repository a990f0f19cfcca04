"""Read models for the dashboard: aggregates and joins done in SQL, one query per panel.

Every function takes the organization id and filters on it first, so no panel can show, or
count, another tenant's rows. They return plain rows (tuples, dicts), never ORM objects: the
dashboard renders them without touching a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from tenancy.models import (
    Event,
    Organization,
    User,
    Workflow,
    WorkflowRun,
)
from tenancy.scoping import in_period, org_id

DAY_MS = 86_400_000


# --- runs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunListRow:
    id: str
    status: str
    workflow_id: str
    workflow_name: str
    trigger_type: str
    created_at: int
    started_at: int | None
    completed_at: int | None
    duration_ms: int | None
    parent_run_id: str | None


def read_run_page(
    session: Session,
    *,
    organization_id: str,
    statuses: tuple[str, ...] = (),
    workflow_id: str | None = None,
    since: int | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[RunListRow]:
    """Newest first, keyset-paginated on the time-ordered id (``before``: the last id shown).

    Served by the (organization_id, id) and (organization_id, status, id) indexes, so a page
    costs the same at 100 runs or 100,000.
    """
    org = org_id(organization_id)
    q = (
        select(
            WorkflowRun.id,
            WorkflowRun.status,
            WorkflowRun.workflow_id,
            Workflow.name,
            WorkflowRun.trigger_type,
            WorkflowRun.created_at,
            WorkflowRun.started_at,
            WorkflowRun.completed_at,
            WorkflowRun.duration_ms,
            WorkflowRun.parent_run_id,
        )
        .join(
            Workflow, and_(Workflow.id == WorkflowRun.workflow_id, Workflow.organization_id == org)
        )
        .where(WorkflowRun.organization_id == org)
    )
    if statuses:
        q = q.where(WorkflowRun.status.in_(statuses))
    if workflow_id:
        q = q.where(WorkflowRun.workflow_id == workflow_id)
    if since is not None:
        q = q.where(WorkflowRun.created_at >= since)
    if before:
        q = q.where(WorkflowRun.id < before)
    rows = session.execute(q.order_by(WorkflowRun.id.desc()).limit(limit)).all()
    return [RunListRow(*r) for r in rows]


def read_previous_run_id(
    session: Session, *, organization_id: str, workflow_id: str, run_id: str
) -> str | None:
    """The run of the same workflow just before this one, for the comparison view."""
    return session.scalar(
        select(WorkflowRun.id)
        .where(
            WorkflowRun.organization_id == org_id(organization_id),
            WorkflowRun.workflow_id == workflow_id,
            WorkflowRun.id < run_id,
        )
        .order_by(WorkflowRun.id.desc())
        .limit(1)
    )


# --- overview --------------------------------------------------------------------------


def executions_per_day(session: Session, *, organization_id: str, since: int) -> dict[int, int]:
    """Runs started per UTC day since ``since`` (ms): {day number since the epoch: count}."""
    day = WorkflowRun.created_at // DAY_MS
    rows = session.execute(
        select(day.label("day"), func.count())
        .where(WorkflowRun.organization_id == org_id(organization_id))
        .where(WorkflowRun.created_at >= since)
        .group_by("day")
    ).all()
    return {int(d): int(n) for d, n in rows}


def average_duration_ms(session: Session, *, organization_id: str, since: int) -> float | None:
    value = session.scalar(
        select(func.avg(WorkflowRun.duration_ms)).where(
            WorkflowRun.organization_id == org_id(organization_id),
            WorkflowRun.created_at >= since,
            WorkflowRun.duration_ms.is_not(None),
        )
    )
    return float(value) if value is not None else None


def count_workflows_by_status(session: Session, *, organization_id: str) -> dict[str, int]:
    rows = session.execute(
        select(Workflow.status, func.count())
        .where(Workflow.organization_id == org_id(organization_id))
        .group_by(Workflow.status)
    ).all()
    return {s: int(n) for s, n in rows}


def read_usage(session: Session, *, organization_id: str) -> dict[str, Any]:
    row = session.execute(
        select(
            Organization.plan,
            Organization.usage_current_executions,
            Organization.usage_limit_executions,
            Organization.usage_reset_at,
            Organization.stripe_customer_id,
            Organization.stripe_subscription_id,
            Organization.billing_email,
        ).where(Organization.id == org_id(organization_id))
    ).one()
    keys = ("plan", "used", "limit", "reset_at", "customer", "subscription", "billing_email")
    return dict(zip(keys, row, strict=True))


# --- workflows -------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowListRow:
    id: str
    name: str
    slug: str
    status: str
    trigger_type: str
    version: int
    created_by: str | None
    created_at: int
    updated_at: int
    last_run_at: int | None
    runs_7d: int


def read_workflow_list(
    session: Session,
    *,
    organization_id: str,
    now: int,
    statuses: tuple[str, ...] = (),
    trigger_types: tuple[str, ...] = (),
    search: str = "",
    created_since: int | None = None,
    created_until: int | None = None,
    include_archived: bool = False,
    limit: int = 200,
) -> list[WorkflowListRow]:
    """Workflows with their last run and 7-day executions (the runs index per workflow)."""
    org = org_id(organization_id)
    last_run = (
        select(func.max(WorkflowRun.created_at))
        .where(WorkflowRun.workflow_id == Workflow.id)
        .scalar_subquery()
    )
    week = (
        select(func.count())
        .where(WorkflowRun.workflow_id == Workflow.id, WorkflowRun.created_at >= now - 7 * DAY_MS)
        .scalar_subquery()
    )
    q = select(
        Workflow.id,
        Workflow.name,
        Workflow.slug,
        Workflow.status,
        Workflow.trigger_type,
        Workflow.version,
        User.name,
        Workflow.created_at,
        Workflow.updated_at,
        last_run,
        week,
    ).outerjoin(User, User.id == Workflow.created_by)
    q = q.where(Workflow.organization_id == org, Workflow.status != "deleted")
    if statuses:
        q = q.where(Workflow.status.in_(statuses))
    elif not include_archived:
        q = q.where(Workflow.status != "archived")
    if trigger_types:
        q = q.where(Workflow.trigger_type.in_(trigger_types))
    if search:
        like = f"%{search.lower()}%"
        q = q.where(or_(func.lower(Workflow.name).like(like), func.lower(Workflow.slug).like(like)))
    q = in_period(q, Workflow.created_at, created_since, created_until)
    rows = session.execute(q.order_by(Workflow.updated_at.desc()).limit(limit)).all()
    return [WorkflowListRow(*r[:10], int(r[10] or 0)) for r in rows]


# --- events ----------------------------------------------------------------------------


def read_event_sources(session: Session, *, organization_id: str) -> list[str]:
    rows = session.scalars(
        select(Event.source)
        .where(Event.organization_id == org_id(organization_id))
        .group_by(Event.source)
        .order_by(Event.source)
        .limit(50)
    )
    return list(rows)
