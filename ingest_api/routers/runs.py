"""Workflow runs: list, detail with every step attempt, cancel, replay, resume."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ingest_api.deps import Allowed, SessionDep
from ingest_api.schemas.runs import (
    ResumeIn,
    RunAccepted,
    RunDetail,
    RunPublic,
    RunsPage,
    StepExecutionPublic,
)
from orbin_flows import runs as run_use_cases
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


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=RunPublic,
    summary="Cancel a run (at once if no worker holds it yet)",
)
def cancel_run(run_id: str, session: SessionDep, principal: Allowed("runs:write")) -> RunPublic:
    """A pending run (or one waiting out a long delay) is ``canceled`` in the answer; a
    running one is stopped by its worker within about a second. 409 if it already ended."""
    return RunPublic.of(run_use_cases.cancel_run(session, principal, run_id))


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
