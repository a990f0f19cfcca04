"""Schedule triggers: a workflow's schedule and its next fire times."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from ingest_api.deps import CurrentPrincipal, SessionDep
from orbin_flows.schedules import schedule_info

router = APIRouter(tags=["workflows"])


@router.get(
    "/v1/workflows/{workflow_id}/schedule",
    summary="A schedule workflow's cron or interval, and its next fire times",
)
def get_schedule(
    workflow_id: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    count: int = Query(5, ge=1, le=50, description="how many fire times"),
) -> dict[str, Any]:
    """``nextRuns`` (ms since the epoch) are computed in the schedule's time zone (empty
    while the workflow is not active); ``synced`` turns true once the worker has written this
    version to Prefect."""
    return schedule_info(session, principal, workflow_id, count=count)
