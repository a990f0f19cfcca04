"""Runs and step executions as the PRD names their fields (camelCase, ms timestamps)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tenancy.models import StepExecution, WorkflowRun


class StepExecutionPublic(BaseModel):
    id: str
    stepId: str
    stepName: str
    stepType: str
    status: str
    attempt: int
    maxAttempts: int
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    nextRetryAt: int | None = None
    startedAt: int | None = None
    completedAt: int | None = None
    durationMs: int | None = None
    createdAt: int

    @classmethod
    def of(cls, s: StepExecution) -> StepExecutionPublic:
        return cls(
            id=s.id,
            stepId=s.step_id,
            stepName=s.step_name,
            stepType=s.step_type,
            status=s.status,
            attempt=s.attempt,
            maxAttempts=s.max_attempts,
            input=s.input,
            output=s.output,
            error=s.error,
            nextRetryAt=s.next_retry_at,
            startedAt=s.started_at,
            completedAt=s.completed_at,
            durationMs=s.duration_ms,
            createdAt=s.created_at,
        )


class RunPublic(BaseModel):
    id: str
    workflowId: str
    workflowVersion: int
    status: str
    triggerType: str
    triggerData: Any = None
    result: Any = None
    error: dict[str, Any] | None = None
    eventId: str | None = None
    parentRunId: str | None = None
    prefectFlowRunId: str | None = None
    cancelRequested: bool = False
    startedAt: int | None = None
    completedAt: int | None = None
    durationMs: int | None = None
    createdAt: int

    @classmethod
    def of(cls, r: WorkflowRun) -> RunPublic:
        return cls(
            id=r.id,
            workflowId=r.workflow_id,
            workflowVersion=r.workflow_version,
            status=r.status,
            triggerType=r.trigger_type,
            triggerData=r.trigger_data,
            result=r.result,
            error=r.error,
            eventId=r.event_id,
            parentRunId=r.parent_run_id,
            prefectFlowRunId=r.prefect_flow_run_id,
            cancelRequested=bool(r.cancel_requested),
            startedAt=r.started_at,
            completedAt=r.completed_at,
            durationMs=r.duration_ms,
            createdAt=r.created_at,
        )


class RunDetail(RunPublic):
    steps: list[StepExecutionPublic]


class RunsPage(BaseModel):
    data: list[RunPublic]
    nextCursor: str | None = None
    hasMore: bool


class RunAccepted(BaseModel):
    runId: str
    status: str


class ResumeIn(BaseModel):
    latestVersion: bool = False
