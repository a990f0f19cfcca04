"""Workflow runs: list, detail with every step attempt."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ingest_api.deps import Allowed, SessionDep
from ingest_api.schemas.runs import RunDetail, RunPublic, RunsPage, StepExecutionPublic
from tenancy import runs as runs_repo

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.get("", response_model=RunsPage, summary="List runs, newest first")
def list_runs(
    session: SessionDep,
    principal: Allowed("runs:read"),
    status: str | None = Query(None, enum=list(runs_repo.RUN_STATUSES)),
    workflowId: str | None = None,  # noqa: N803 - the API's field name
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, description="nextCursor of the previous page"),
) -> RunsPage:
    rows = runs_repo.read_runs(
        session,
        organization_id=principal.organization_id,
        limit=limit + 1,
        before=cursor,
        status=status,
        workflow_id=workflowId,
    )
    page = rows[:limit]
    more = len(rows) > limit
    return RunsPage(
        data=[RunPublic.of(r) for r in page],
        nextCursor=page[-1].id if more and page else None,
        hasMore=more,
    )


@router.get("/{run_id}", response_model=RunDetail, summary="One run with its step executions")
def get_run(run_id: str, session: SessionDep, principal: Allowed("runs:read")) -> RunDetail:
    run = runs_repo.read_run(session, organization_id=principal.organization_id, run_id=run_id)
    steps = runs_repo.read_step_executions(
        session, organization_id=principal.organization_id, run_id=run.id
    )
    return RunDetail(
        **RunPublic.of(run).model_dump(), steps=[StepExecutionPublic.of(s) for s in steps]
    )
