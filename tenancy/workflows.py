"""Workflow records and their versions. The spec itself is validated by orbin_flows."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tenancy.actors import NOBODY, Actor
from tenancy.db import flush_unique
from tenancy.models import Workflow, WorkflowVersion
from tenancy.scoping import first_or_not_found, get_scoped, scoped

WorkflowStatus = Literal["draft", "active", "paused", "archived"]


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _trigger_columns(trigger: dict[str, Any]) -> tuple[str, str | None]:
    ttype = trigger.get("type", "manual")
    key = None
    if ttype == "event":
        key = (trigger.get("config") or {}).get("eventType")
    return ttype, key


def _spec_columns(spec: dict[str, Any]) -> dict[str, Any]:
    """The workflow row's columns that mirror its newest spec."""
    ttype, key = _trigger_columns(spec["trigger"])
    return {
        "name": spec["name"],
        "slug": spec["slug"],
        "description": spec.get("description"),
        "trigger": spec["trigger"],
        "steps": spec.get("steps", []),
        "settings": spec.get("settings") or {},
        "trigger_type": ttype,
        "trigger_event_key": key,
        "code_hash": spec_hash(spec),
    }


def _add_version(session: Session, workflow: Workflow, spec: dict[str, Any], actor: Actor) -> None:
    session.add(
        WorkflowVersion(
            organization_id=workflow.organization_id,
            workflow_id=workflow.id,
            version=workflow.version,
            spec=spec,
            code_hash=workflow.code_hash or "",
            created_by=actor.user_id,
            created_by_key_id=actor.key_id,
        )
    )


def insert_workflow(
    session: Session,
    *,
    organization_id: str,
    spec: dict[str, Any],
    actor: Actor = NOBODY,
    entrypoint: str | None = None,
) -> Workflow:
    wf = Workflow(
        organization_id=organization_id,
        **_spec_columns(spec),
        status=spec.get("status") or "draft",
        version=1,
        entrypoint=entrypoint or spec.get("deployment"),
        created_by=actor.user_id,
        updated_by=actor.user_id,
        created_by_key_id=actor.key_id,
        updated_by_key_id=actor.key_id,
    )
    session.add(wf)
    flush_unique(session, f"a workflow with slug {spec['slug']!r} exists in this organization")
    _add_version(session, wf, spec, actor)
    session.flush()
    return wf


def save_workflow_version(
    session: Session, *, workflow: Workflow, spec: dict[str, Any], actor: Actor = NOBODY
) -> Workflow:
    """Every save is a new version; the workflow row mirrors the newest one."""
    workflow.version += 1
    for column, value in _spec_columns(spec).items():
        setattr(workflow, column, value)
    if spec.get("status"):
        workflow.status = spec["status"]
    workflow.entrypoint = spec.get("deployment")
    workflow.updated_by = actor.user_id
    workflow.updated_by_key_id = actor.key_id
    _add_version(session, workflow, spec, actor)
    flush_unique(session, "the workflow changed meanwhile, or its slug is taken; reload and retry")
    return workflow


def read_workflow(session: Session, *, organization_id: str, workflow_id: str) -> Workflow:
    return get_scoped(session, Workflow, organization_id, workflow_id, label="workflow")


def find_workflow(session: Session, workflow_id: str) -> Workflow | None:
    """Any organization's workflow by id (the platform's own jobs, not a request)."""
    return session.get(Workflow, workflow_id)


def read_workflow_by_slug(session: Session, *, organization_id: str, slug: str) -> Workflow:
    stmt = scoped(Workflow, organization_id).where(Workflow.slug == slug)
    return first_or_not_found(session, stmt, f"workflow {slug!r} not found")


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
    stmt = scoped(WorkflowVersion, organization_id).where(
        WorkflowVersion.workflow_id == workflow_id, WorkflowVersion.version == version
    )
    return first_or_not_found(
        session, stmt, f"version {version} of workflow {workflow_id} not found"
    )


def read_workflow_versions(
    session: Session,
    *,
    organization_id: str,
    workflow_id: str,
    limit: int | None = None,
    before_version: int | None = None,
) -> list[WorkflowVersion]:
    """Newest first; ``before_version`` starts after that version (keyset pages)."""
    q = scoped(WorkflowVersion, organization_id).where(WorkflowVersion.workflow_id == workflow_id)
    if before_version is not None:
        q = q.where(WorkflowVersion.version < before_version)
    q = q.order_by(WorkflowVersion.version.desc())
    return list(session.scalars(q.limit(limit) if limit else q))


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
