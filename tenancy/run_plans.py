"""What a worker needs to execute one run (the four-table join), loaded once for the flow body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tenancy.db import session_scope
from tenancy.errors import NotFound
from tenancy.models import Organization, Workflow, WorkflowRun, WorkflowVersion
from tenancy.plans import get_plan


@dataclass
class RunPlan:
    run: WorkflowRun
    spec: dict[str, Any]
    organization_slug: str
    workflow_slug: str
    default_retry: dict[str, Any]
    concurrency: int
    completed: dict[str, Any] = field(default_factory=dict)


def load_plan(run_id: str) -> RunPlan:
    with session_scope() as session:
        row = session.execute(
            select(WorkflowRun, Workflow, Organization, WorkflowVersion)
            .join(Workflow, Workflow.id == WorkflowRun.workflow_id)
            .join(Organization, Organization.id == WorkflowRun.organization_id)
            .join(
                WorkflowVersion,
                (WorkflowVersion.workflow_id == WorkflowRun.workflow_id)
                & (WorkflowVersion.version == WorkflowRun.workflow_version),
            )
            .where(WorkflowRun.id == run_id)
        ).first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        run, wf, org, version = row
        session.expunge(run)
        return RunPlan(
            run=run,
            spec=version.spec,
            organization_slug=org.slug,
            workflow_slug=wf.slug,
            default_retry=(org.settings or {}).get("defaultRetryPolicy") or {},
            concurrency=get_plan(org.plan).concurrency,
        )
