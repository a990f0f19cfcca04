"""Workflow use cases: create, save a version, activate, pause, roll back, run by hand."""

from __future__ import annotations

import difflib
import json
from typing import Any

from orbin_flows.spec import validate_spec
from tenancy import runs as runs_repo
from tenancy import workflows as repo
from tenancy.actors import Actor
from tenancy.audit import record_audit
from tenancy.db import Session
from tenancy.errors import Conflict, InvalidInput
from tenancy.principal import Principal
from tenancy.runs import WorkflowRun
from tenancy.usage import reserve_executions
from tenancy.workflows import Workflow


def _workflow(
    session: Session, principal: Principal, workflow_id: str, permission: str
) -> Workflow:
    """The caller's workflow, once it may do ``permission`` (another organization's: 404)."""
    principal.require(permission)
    return repo.read_workflow(
        session, organization_id=principal.organization_id, workflow_id=workflow_id
    )


def _spec_dict(data: Any) -> dict[str, Any]:
    return validate_spec(data).model_dump(mode="json", by_alias=True, exclude_none=True)


def _check_integrations(session: Session, principal: Principal, spec: dict[str, Any]) -> None:
    from orbin_flows.integrations.references import check_references

    check_references(session, organization_id=principal.organization_id, spec=spec)


def create_workflow(session: Session, principal: Principal, data: Any) -> Workflow:
    principal.require("workflows:write")
    spec = _spec_dict(data)
    _check_integrations(session, principal, spec)
    wf = repo.insert_workflow(
        session, organization_id=principal.organization_id, spec=spec, actor=Actor.of(principal)
    )
    record_audit(session, principal, "workflow.created", "workflow", wf.id, {"slug": wf.slug})
    return wf


def update_workflow(
    session: Session, principal: Principal, workflow_id: str, data: Any
) -> Workflow:
    wf = _workflow(session, principal, workflow_id, "workflows:write")
    if isinstance(data, dict) and "status" not in data:
        data = {**data, "status": wf.status}
    spec = _spec_dict(data)
    _check_integrations(session, principal, spec)
    repo.save_workflow_version(session, workflow=wf, spec=spec, actor=Actor.of(principal))
    record_audit(session, principal, "workflow.updated", "workflow", wf.id, {"version": wf.version})
    return wf


def current_spec(session: Session, workflow: Workflow) -> dict[str, Any]:
    return repo.read_workflow_version(
        session,
        organization_id=workflow.organization_id,
        workflow_id=workflow.id,
        version=workflow.version,
    ).spec


def set_status(session: Session, principal: Principal, workflow_id: str, status: str) -> Workflow:
    """Activate, pause or archive: a new version too, so the history shows who did it."""
    wf = _workflow(session, principal, workflow_id, "workflows:write")
    if wf.status == status:
        return wf
    spec = {**current_spec(session, wf), "status": status}
    repo.save_workflow_version(session, workflow=wf, spec=spec, actor=Actor.of(principal))
    record_audit(
        session, principal, f"workflow.{status}", "workflow", wf.id, {"version": wf.version}
    )
    return wf


def rollback(session: Session, principal: Principal, workflow_id: str, version: int) -> Workflow:
    wf = _workflow(session, principal, workflow_id, "workflows:write")
    old = repo.read_workflow_version(
        session, organization_id=principal.organization_id, workflow_id=workflow_id, version=version
    )
    spec = {**old.spec, "status": wf.status}
    repo.save_workflow_version(session, workflow=wf, spec=spec, actor=Actor.of(principal))
    record_audit(
        session,
        principal,
        "workflow.rolled_back",
        "workflow",
        wf.id,
        {"to": version, "version": wf.version},
    )
    return wf


def diff_versions(
    session: Session, principal: Principal, workflow_id: str, a: int, b: int
) -> dict[str, Any]:
    principal.require("workflows:read")
    org = principal.organization_id
    va = repo.read_workflow_version(
        session, organization_id=org, workflow_id=workflow_id, version=a
    )
    vb = repo.read_workflow_version(
        session, organization_id=org, workflow_id=workflow_id, version=b
    )
    left = json.dumps(va.spec, indent=2, sort_keys=True).splitlines()
    right = json.dumps(vb.spec, indent=2, sort_keys=True).splitlines()
    unified = list(difflib.unified_diff(left, right, f"v{a}", f"v{b}", lineterm=""))
    changed = sorted(k for k in set(va.spec) | set(vb.spec) if va.spec.get(k) != vb.spec.get(k))
    return {"from": a, "to": b, "changedFields": changed, "diff": "\n".join(unified)}


def trigger_manually(
    session: Session, principal: Principal, workflow_id: str, payload: Any
) -> WorkflowRun:
    wf = _workflow(session, principal, workflow_id, "runs:write")
    if wf.status in ("archived",):
        raise Conflict("an archived workflow cannot run")
    if payload is not None and not isinstance(payload, dict):
        raise InvalidInput("the payload must be a JSON object", details=[{"path": "data"}])
    reserve_executions(session, organization_id=principal.organization_id, count=1)
    run = runs_repo.create_run(
        session,
        organization_id=principal.organization_id,
        workflow=wf,
        trigger_type="manual",
        trigger_data={
            "type": "manual",
            "data": payload or {},
            "by": Actor.of(principal).ref(),
        },
        actor=Actor.of(principal),
    )
    record_audit(session, principal, "workflow.triggered", "workflow", wf.id, {"runId": run.id})
    return run
