"""Workflow runs: list, detail with every step attempt, cancel, replay, resume."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from ingest_api.deps import Allowed, SessionDep
from ingest_api.schemas.runs import (
    ResumeIn,
    RunAccepted,
    RunArtifactPublic,
    RunArtifactsPage,
    RunDetail,
    RunPublic,
    RunsPage,
    StepExecutionPublic,
)
from orbin_flows import artifacts as artifact_cases
from orbin_flows import runs as run_use_cases
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.pagination import page
from tenancy.runs import RunStatus, WorkflowRun

router = APIRouter(prefix="/v1/runs", tags=["runs"])


@router.get("", response_model=RunsPage, summary="List runs, newest first")
def list_runs(
    session: SessionDep,
    principal: Allowed("runs:read"),
    status: RunStatus | None = None,
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
    return RunsPage.of_rows(page(rows, limit), RunPublic.of)


def _detail(session: SessionDep, organization_id: str, run: WorkflowRun) -> RunDetail:
    steps = steps_repo.read_step_executions(session, organization_id=organization_id, run_id=run.id)
    return RunDetail(
        **RunPublic.of(run).model_dump(), steps=[StepExecutionPublic.of(s) for s in steps]
    )


@router.get("/{run_id}", response_model=RunDetail, summary="One run with its step executions")
def get_run(run_id: str, session: SessionDep, principal: Allowed("runs:read")) -> RunDetail:
    run = runs_repo.read_run(session, organization_id=principal.organization_id, run_id=run_id)
    return _detail(session, principal.organization_id, run)


@router.get(
    "/{run_id}/artifacts",
    response_model=RunArtifactsPage,
    summary="The run's Prefect artifacts and its step outputs stored out of line",
)
def list_run_artifacts(
    run_id: str,
    session: SessionDep,
    principal: Allowed("runs:read"),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, description="nextCursor of the previous page"),
) -> RunArtifactsPage:
    """Oldest first: the markdown summary and step table the run left in Prefect (for its
    flow run), then each stored output with the ``url`` that fetches it."""
    found = artifact_cases.read_run_artifacts(
        session, organization_id=principal.organization_id, run_id=run_id
    )
    items = found.items
    if cursor is not None:
        at = next((i for i, a in enumerate(items) if a.id == cursor), None)
        items = items[at + 1 :] if at is not None else []
    rows = page(items, limit)
    out = RunArtifactsPage.of_rows(rows, lambda a: RunArtifactPublic.of(run_id, a))
    out.prefectError = found.prefect_error
    return out


@router.get(
    "/{run_id}/steps/{step_id}/output",
    summary="A step's full output (fetched from storage when it was stored out of line)",
    responses={200: {"content": {"application/json": {}}}},
)
def get_step_output(
    run_id: str, step_id: str, session: SessionDep, principal: Allowed("runs:read")
):
    """``step_id``: a step execution's id (``outputUrl`` of ``GET /v1/runs/{id}``), or the
    step's id in the workflow for its latest attempt. The body is the output's JSON as stored."""
    body = artifact_cases.read_step_output(
        session, organization_id=principal.organization_id, run_id=run_id, step_id=step_id
    )
    return Response(content=body, media_type="application/json")


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=RunDetail,
    summary="Cancel a run (at once if no worker holds it yet)",
)
def cancel_run(run_id: str, session: SessionDep, principal: Allowed("runs:write")) -> RunDetail:
    """The answer is the run as it now is, as ``GET /v1/runs/{id}`` shows it: a pending or
    suspended run is ``canceled`` at once (its waiting step too); a running one has
    ``cancelRequested`` and is stopped by its worker within about a second. 409 if it
    already ended."""
    run = run_use_cases.cancel_run(session, principal, run_id)
    return _detail(session, principal.organization_id, run)


@router.post(
    "/{run_id}/replay",
    status_code=202,
    response_model=RunAccepted,
    summary="Run again with the same input (current version; parentRunId links them)",
)
def replay_run(run_id: str, session: SessionDep, principal: Allowed("runs:write")) -> RunAccepted:
    run = run_use_cases.replay_run(session, principal, run_id)
    return RunAccepted(runId=run.id, status=run.status)


@router.post(
    "/{run_id}/resume",
    status_code=202,
    response_model=RunAccepted,
    summary="Continue a failed run from its failed step, in a new linked run",
)
def resume_run(
    run_id: str,
    session: SessionDep,
    principal: Allowed("runs:write"),
    body: ResumeIn | None = None,
) -> RunAccepted:
    """The new run (``parentRunId`` = this one) carries this run's completed steps and their
    outputs over without executing them again. It runs this run's workflow version, or the
    newest with ``{"latestVersion": true}``."""
    latest = bool(body and body.latestVersion)
    run = run_use_cases.resume_run(session, principal, run_id, latest_version=latest)
    return RunAccepted(runId=run.id, status=run.status)
