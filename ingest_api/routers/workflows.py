"""Workflows: CRUD, versions, activation, manual runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from ingest_api.body import read_json
from ingest_api.deps import Allowed, SessionDep
from ingest_api.schemas.runs import RunAccepted
from ingest_api.schemas.workflows import (
    RollbackIn,
    VersionsPage,
    WorkflowPublic,
    WorkflowsPage,
    WorkflowVersionPublic,
)
from orbin_flows import workflows as use_cases
from orbin_flows.spec import spec_json_schema
from tenancy import workflows as repo
from tenancy.db import Session
from tenancy.pagination import page
from tenancy.principal import Principal
from tenancy.workflows import WorkflowStatus

router = APIRouter(prefix="/v1/workflows", tags=["workflows"])

_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WorkflowSpec"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@router.get("/schema", summary="JSON Schema of a workflow spec, for editors")
def get_schema() -> dict[str, Any]:
    return spec_json_schema()


# The handlers that read a body are async; they use the request's session (the one that
# authenticated the key) in a thread, never a second one: on SQLite a second writer would wait
# for the first until it times out.


def _create(session: Session, principal: Principal, body: Any) -> WorkflowPublic:
    return WorkflowPublic.of(use_cases.create_workflow(session, principal, body))


@router.post("", status_code=201, response_model=WorkflowPublic, openapi_extra=_SPEC_BODY)
async def create_workflow(
    request: Request, session: SessionDep, principal: Allowed("workflows:write")
) -> Any:
    """Create a workflow from a spec (JSON, or YAML with ``content-type: application/yaml``).

    It is a ``draft`` unless the spec sets ``status``. A spec with ``deployment``
    (``flow-name/deployment-name``) registers a code workflow: a Prefect flow rolled out with
    ``prefect deploy`` into the organization's work pool."""
    body = await read_json(request, allow_yaml=True)
    return await run_in_threadpool(_create, session, principal, body)


@router.get("", response_model=WorkflowsPage)
def list_workflows(
    session: SessionDep,
    principal: Allowed("workflows:read"),
    status: WorkflowStatus | None = None,
    limit: int = Query(100, ge=1, le=200),
    cursor: str | None = None,
) -> WorkflowsPage:
    rows = repo.read_workflows(
        session,
        organization_id=principal.organization_id,
        status=status,
        limit=limit + 1,
        before=cursor,
    )
    return WorkflowsPage.of_rows(page(rows, limit), WorkflowPublic.of)


@router.get("/{workflow_id}", response_model=WorkflowPublic)
def get_workflow(
    workflow_id: str, session: SessionDep, principal: Allowed("workflows:read")
) -> Any:
    return WorkflowPublic.of(
        repo.read_workflow(
            session, organization_id=principal.organization_id, workflow_id=workflow_id
        )
    )


def _update(session: Session, principal: Principal, workflow_id: str, body: Any) -> Any:
    return WorkflowPublic.of(use_cases.update_workflow(session, principal, workflow_id, body))


@router.put("/{workflow_id}", response_model=WorkflowPublic, openapi_extra=_SPEC_BODY)
async def update_workflow(
    workflow_id: str, request: Request, session: SessionDep, principal: Allowed("workflows:write")
) -> Any:
    """Save a new version; runs already started keep the version they began with."""
    body = await read_json(request, allow_yaml=True)
    return await run_in_threadpool(_update, session, principal, workflow_id, body)


@router.delete("/{workflow_id}", response_model=WorkflowPublic)
def delete_workflow(
    workflow_id: str, session: SessionDep, principal: Allowed("workflows:write")
) -> Any:
    """Archive the workflow: it stops triggering; its runs and versions are kept."""
    return WorkflowPublic.of(use_cases.set_status(session, principal, workflow_id, "archived"))


@router.post("/{workflow_id}/activate", response_model=WorkflowPublic)
def activate(workflow_id: str, session: SessionDep, principal: Allowed("workflows:write")) -> Any:
    return WorkflowPublic.of(use_cases.set_status(session, principal, workflow_id, "active"))


@router.post("/{workflow_id}/pause", response_model=WorkflowPublic)
def pause(workflow_id: str, session: SessionDep, principal: Allowed("workflows:write")) -> Any:
    return WorkflowPublic.of(use_cases.set_status(session, principal, workflow_id, "paused"))


@router.get(
    "/{workflow_id}/versions", response_model=VersionsPage, summary="Versions, newest first"
)
def versions(
    workflow_id: str,
    session: SessionDep,
    principal: Allowed("workflows:read"),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(
        None, pattern=r"^[0-9]{1,9}$", description="nextCursor of the last page (a version)"
    ),
) -> VersionsPage:
    repo.read_workflow(session, organization_id=principal.organization_id, workflow_id=workflow_id)
    rows = repo.read_workflow_versions(
        session,
        organization_id=principal.organization_id,
        workflow_id=workflow_id,
        limit=limit + 1,
        before_version=int(cursor) if cursor else None,
    )
    return VersionsPage.of_rows(
        page(rows, limit, cursor_of=lambda v: str(v.version)), WorkflowVersionPublic.of
    )


@router.get(
    "/{workflow_id}/versions/{version}",
    response_model=WorkflowVersionPublic,
    summary="One version: its spec and who saved it",
)
def get_version(
    workflow_id: str,
    session: SessionDep,
    principal: Allowed("workflows:read"),
    version: int = Path(ge=1, le=2_000_000_000),
) -> WorkflowVersionPublic:
    return WorkflowVersionPublic.of(
        repo.read_workflow_version(
            session,
            organization_id=principal.organization_id,
            workflow_id=workflow_id,
            version=version,
        )
    )


@router.get("/{workflow_id}/diff")
def diff(
    workflow_id: str,
    session: SessionDep,
    principal: Allowed("workflows:read"),
    from_: int = Query(alias="from", ge=1),
    to: int = Query(ge=1),
) -> dict[str, Any]:
    return use_cases.diff_versions(session, principal, workflow_id, from_, to)


@router.post("/{workflow_id}/rollback", response_model=WorkflowPublic)
def rollback(
    workflow_id: str, body: RollbackIn, session: SessionDep, principal: Allowed("workflows:write")
) -> Any:
    """A new version whose spec is that of ``version``."""
    return WorkflowPublic.of(use_cases.rollback(session, principal, workflow_id, body.version))


def _trigger(session: Session, principal: Principal, workflow_id: str, payload: Any) -> Any:
    run = use_cases.trigger_manually(session, principal, workflow_id, payload)
    return RunAccepted(runId=run.id, status=run.status)


@router.post("/{workflow_id}/runs", status_code=202, response_model=RunAccepted)
async def run_workflow(
    workflow_id: str, request: Request, session: SessionDep, principal: Allowed("runs:write")
) -> Any:
    """Start a run by hand with a JSON payload (``{"data": {...}}`` or the payload itself)."""
    body: Any = {}
    if request.headers.get("content-length", "0") not in ("0", ""):
        body = await read_json(request)
    payload = body.get("data", body) if isinstance(body, dict) else body
    return await run_in_threadpool(_trigger, session, principal, workflow_id, payload)
