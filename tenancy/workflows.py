"""Workflow records and their versions. The spec itself is validated by orbin_flows."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenancy.errors import Conflict, NotFound
from tenancy.models import Workflow, WorkflowVersion
from tenancy.scoping import get_scoped, scoped


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _trigger_columns(trigger: dict[str, Any]) -> tuple[str, str | None]:
    ttype = trigger.get("type", "manual")
    key = None
    if ttype == "event":
        key = (trigger.get("config") or {}).get("eventType")
    return ttype, key


def insert_workflow(
    session: Session,
    *,
    organization_id: str,
    spec: dict[str, Any],
    created_by: str | None = None,
    entrypoint: str | None = None,
) -> Workflow:
    ttype, key = _trigger_columns(spec["trigger"])
    wf = Workflow(
        organization_id=organization_id,
        name=spec["name"],
        slug=spec["slug"],
        description=spec.get("description"),
        trigger=spec["trigger"],
        steps=spec.get("steps", []),
        settings=spec.get("settings") or {},
        trigger_type=ttype,
        trigger_event_key=key,
        status=spec.get("status") or "draft",
        version=1,
        code_hash=spec_hash(spec),
        entrypoint=entrypoint or spec.get("deployment"),
        created_by=created_by,
        updated_by=created_by,
    )
    session.add(wf)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"a workflow with slug {spec['slug']!r} exists in this organization"
        ) from exc
    session.add(
        WorkflowVersion(
            organization_id=organization_id,
            workflow_id=wf.id,
            version=1,
            spec=spec,
            code_hash=wf.code_hash or "",
            created_by=created_by,
        )
    )
    session.flush()
    return wf


def save_workflow_version(
    session: Session, *, workflow: Workflow, spec: dict[str, Any], updated_by: str | None = None
) -> Workflow:
    """Every save is a new version; the workflow row mirrors the newest one."""
    ttype, key = _trigger_columns(spec["trigger"])
    workflow.version += 1
    workflow.name = spec["name"]
    workflow.slug = spec["slug"]
    workflow.description = spec.get("description")
    workflow.trigger = spec["trigger"]
    workflow.steps = spec.get("steps", [])
    workflow.settings = spec.get("settings") or {}
    workflow.trigger_type = ttype
    workflow.trigger_event_key = key
    if spec.get("status"):
        workflow.status = spec["status"]
    workflow.code_hash = spec_hash(spec)
    workflow.entrypoint = spec.get("deployment")
    workflow.updated_by = updated_by
    session.add(
        WorkflowVersion(
            organization_id=workflow.organization_id,
            workflow_id=workflow.id,
            version=workflow.version,
            spec=spec,
            code_hash=workflow.code_hash,
            created_by=updated_by,
        )
    )
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "the workflow changed meanwhile, or its slug is taken; reload and retry"
        ) from exc
    return workflow


def read_workflow(session: Session, *, organization_id: str, workflow_id: str) -> Workflow:
    return get_scoped(session, Workflow, organization_id, workflow_id, label="workflow")


def read_workflow_by_slug(session: Session, *, organization_id: str, slug: str) -> Workflow:
    wf = session.scalars(scoped(Workflow, organization_id).where(Workflow.slug == slug)).first()
    if wf is None:
        raise NotFound(f"workflow {slug!r} not found")
    return wf


def read_workflows(
    session: Session,
    *,
    organization_id: str,
    status: str | None = None,
    limit: int = 100,
    before: str | None = None,
) -> list[Workflow]:
    q = scoped(Workflow, organization_id)
    if status:
        q = q.where(Workflow.status == status)
    else:
        q = q.where(Workflow.status != "deleted")
    if before:
        q = q.where(Workflow.id < before)
    return list(session.scalars(q.order_by(Workflow.id.desc()).limit(limit)))


def read_workflow_version(
    session: Session, *, organization_id: str, workflow_id: str, version: int
) -> WorkflowVersion:
    row = session.scalars(
        scoped(WorkflowVersion, organization_id).where(
            WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == version
        )
    ).first()
    if row is None:
        raise NotFound(f"version {version} of workflow {workflow_id} not found")
    return row


def read_workflow_versions(
    session: Session, *, organization_id: str, workflow_id: str
) -> list[WorkflowVersion]:
    return list(
        session.scalars(
            scoped(WorkflowVersion, organization_id)
            .where(WorkflowVersion.workflow_id == workflow_id)
            .order_by(WorkflowVersion.version.desc())
        )
    )


def read_event_trigger_candidates(
    session: Session, *, organization_id: str, event_type: str
) -> list[Workflow]:
    """Active workflows whose event trigger may match: the exact type, or any pattern."""
    return list(
        session.scalars(
            select(Workflow).where(
                Workflow.organization_id == organization_id,
                Workflow.trigger_type == "event",
                Workflow.status == "active",
                or_(
                    Workflow.trigger_event_key == event_type,
                    Workflow.trigger_event_key.contains("*"),
                ),
            )
        )
    )
