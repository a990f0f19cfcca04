"""Data access for schedule triggers: which workflows' schedules Prefect must learn of, and
which workflow and run a scheduled Prefect flow run belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tenancy.models import Organization, Workflow, WorkflowRun
from tenancy.plans import get_plan


@dataclass(frozen=True)
class ScheduleSync:
    workflow_id: str
    organization_id: str
    organization_slug: str
    workflow_slug: str
    version: int
    status: str
    trigger: dict[str, Any]
    deployment_id: str | None
    concurrency: int


def read_schedules_to_sync(session: Session, *, limit: int = 50) -> list[ScheduleSync]:
    """Workflows whose schedule (or lack of one, for a former schedule) Prefect has not seen:
    every save, activation or pause is a new version."""
    rows = session.execute(
        select(Workflow, Organization.slug, Organization.plan)
        .join(Organization, Organization.id == Workflow.organization_id)
        .where(
            or_(Workflow.trigger_type == "schedule", Workflow.schedule_synced_version.is_not(None)),
            or_(
                Workflow.schedule_synced_version.is_(None),
                Workflow.schedule_synced_version != Workflow.version,
            ),
        )
        .order_by(Workflow.updated_at)
        .limit(limit)
    ).all()
    return [
        ScheduleSync(
            workflow_id=wf.id,
            organization_id=wf.organization_id,
            organization_slug=org_slug,
            workflow_slug=wf.slug,
            version=wf.version,
            status=wf.status,
            trigger=wf.trigger,
            deployment_id=wf.prefect_deployment_id,
            concurrency=get_plan(plan).concurrency,
        )
        for wf, org_slug, plan in rows
    ]


def mark_schedule_synced(
    session: Session, *, workflow_id: str, version: int, deployment_id: str, has_schedule: bool
) -> bool:
    """False when the workflow changed meanwhile (it is synced again on the next pass)."""
    res = session.execute(
        update(Workflow)
        .where(Workflow.id == workflow_id, Workflow.version == version)
        .values(
            schedule_synced_version=version if has_schedule else None,
            prefect_deployment_id=deployment_id,
        )
    )
    return bool(res.rowcount)


def any_synced_schedule(session: Session) -> bool:
    return (
        session.scalar(
            select(Workflow.id).where(Workflow.schedule_synced_version.is_not(None)).limit(1)
        )
        is not None
    )


def read_workflow_by_deployment(session: Session, *, deployment_id: str) -> Workflow | None:
    """The workflow whose schedule lives on this Prefect deployment (the platform's view)."""
    return session.scalars(
        select(Workflow).where(Workflow.prefect_deployment_id == deployment_id).limit(1)
    ).first()


def read_run_by_flow_run(session: Session, *, flow_run_id: str) -> WorkflowRun | None:
    return session.scalars(
        select(WorkflowRun).where(WorkflowRun.prefect_flow_run_id == flow_run_id).limit(1)
    ).first()
