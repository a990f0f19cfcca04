"""Data for the pages, through the service layer. Every loader takes the organization id first,
so nothing is read, or cached, across organizations. Who may see which organization is
``accounts``' business."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy import workflows as workflows_repo
from tenancy.db import session_scope
from tenancy.errors import NotFound


@dataclass(frozen=True)
class RunRow:
    id: str
    status: str
    workflow_name: str
    trigger_type: str
    created_at: int
    started_at: int | None
    completed_at: int | None
    duration_ms: int | None
    resume_at: int | None = None  # suspended by a long delay: when it runs again


@dataclass(frozen=True)
class StepAttempt:
    id: str
    step_id: str
    name: str
    type: str
    status: str
    attempt: int
    max_attempts: int
    input: Any
    output: Any
    error: dict[str, Any] | None
    next_retry_at: int | None
    started_at: int | None
    completed_at: int | None
    duration_ms: int | None


@dataclass(frozen=True)
class PlannedStep:
    id: str
    name: str
    type: str


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    workflow_id: str
    workflow_version: int
    trigger_data: Any
    result: Any
    error: dict[str, Any] | None
    planned_steps: list[PlannedStep]
    attempts: list[StepAttempt]


# --- runs --------------------------------------------------------------------------------


def _run_row(run: Any, workflow_name: str) -> RunRow:
    return RunRow(
        id=run.id,
        status=run.status,
        workflow_name=workflow_name,
        trigger_type=run.trigger_type,
        created_at=run.created_at,
        started_at=run.started_at,
        completed_at=run.completed_at,
        duration_ms=run.duration_ms,
        resume_at=run.resume_at if run.status == "suspended" else None,
    )


def recent_runs(
    organization_id: str, *, statuses: tuple[str, ...] = (), limit: int = 50
) -> list[RunRow]:
    with session_scope() as session:
        rows = runs_repo.read_runs_with_workflow_names(
            session, organization_id=organization_id, statuses=statuses, limit=limit
        )
        return [_run_row(run, name) for run, name in rows]


def run_counts_since(organization_id: str, since_ms: int) -> dict[str, int]:
    with session_scope() as session:
        return runs_repo.count_runs_by_status(
            session, organization_id=organization_id, since=since_ms
        )


@st.cache_data(ttl=600, show_spinner=False)
def planned_steps(organization_id: str, workflow_id: str, version: int) -> list[PlannedStep]:
    """The top-level steps of one workflow version (versions never change, so cached)."""
    with session_scope() as session:
        try:
            spec = workflows_repo.read_workflow_version(
                session, organization_id=organization_id, workflow_id=workflow_id, version=version
            ).spec
        except NotFound:
            spec = {
                "steps": workflows_repo.read_workflow(
                    session, organization_id=organization_id, workflow_id=workflow_id
                ).steps
            }
    return [
        PlannedStep(str(s.get("id")), str(s.get("name") or s.get("id")), str(s.get("type", "")))
        for s in spec.get("steps") or []
    ]


def _attempt(s: Any) -> StepAttempt:
    return StepAttempt(
        id=s.id,
        step_id=s.step_id,
        name=s.step_name,
        type=s.step_type,
        status=s.status,
        attempt=s.attempt,
        max_attempts=s.max_attempts,
        input=s.input,
        output=s.output,
        error=s.error,
        next_retry_at=s.next_retry_at,
        started_at=s.started_at,
        completed_at=s.completed_at,
        duration_ms=s.duration_ms,
    )


def run_detail(organization_id: str, run_id: str) -> RunDetail:
    """One run of this organization with its step attempts; NotFound for any other run."""
    with session_scope() as session:
        run = runs_repo.read_run(session, organization_id=organization_id, run_id=run_id)
        workflow = workflows_repo.read_workflow(
            session, organization_id=organization_id, workflow_id=run.workflow_id
        )
        attempts = steps_repo.read_step_executions(
            session, organization_id=organization_id, run_id=run.id
        )
        detail = RunDetail(
            run=_run_row(run, workflow.name),
            workflow_id=workflow.id,
            workflow_version=run.workflow_version,
            trigger_data=run.trigger_data,
            result=run.result,
            error=run.error,
            planned_steps=[],
            attempts=[_attempt(a) for a in attempts],
        )
    steps = planned_steps(organization_id, detail.workflow_id, detail.workflow_version)
    return replace(detail, planned_steps=steps)
