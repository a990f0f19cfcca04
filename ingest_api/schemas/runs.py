"""Runs and step executions as the PRD names their fields (camelCase, ms timestamps)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ingest_api.schemas.common import ActorRef, Page
from orbin_flows import results
from telemetry.tracing import trace_id_of
from tenancy.runs import RunStatus
from tenancy.steps import StepStatus


class StepExecutionPublic(BaseModel):
    id: str
    stepId: str
    stepName: str
    stepType: str
    status: StepStatus
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
    outputUrl: str | None = Field(
        None,
        description="where the full output is fetched when it was stored out of line "
        '(``output`` is then ``{"$ref": {"storage", "key", "bytes"}}``)',
    )

    @classmethod
    def of(cls, s: Any) -> StepExecutionPublic:
        stored = results.ref_of(s.output) is not None
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
            outputUrl=f"/v1/runs/{s.workflow_run_id}/steps/{s.id}/output" if stored else None,
        )


class RunPublic(BaseModel):
    id: str
    workflowId: str
    workflowVersion: int
    status: RunStatus
    triggerType: str
    triggerData: Any = None
    result: Any = None
    error: dict[str, Any] | None = None
    eventId: str | None = None
    parentRunId: str | None = None
    prefectFlowRunId: str | None = None
    traceId: str | None = None  # OpenTelemetry trace of the request that started it
    cancelRequested: bool = False
    createdBy: ActorRef | None = None
    resumeAt: int | None = None  # suspended: when its long delay ends and it runs again
    startedAt: int | None = None
    completedAt: int | None = None
    durationMs: int | None = None
    createdAt: int

    @classmethod
    def of(cls, r: Any) -> RunPublic:
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
            traceId=trace_id_of(r.trace_parent),
            cancelRequested=bool(r.cancel_requested),
            createdBy=ActorRef.of(r.created_by, r.created_by_key_id),
            resumeAt=r.resume_at if r.status == "suspended" else None,
            startedAt=r.started_at,
            completedAt=r.completed_at,
            durationMs=r.duration_ms,
            createdAt=r.created_at,
        )


class RunDetail(RunPublic):
    steps: list[StepExecutionPublic]


class RunsPage(Page):
    data: list[RunPublic]


class RunAccepted(BaseModel):
    runId: str
    status: RunStatus


class ResumeIn(BaseModel):
    latestVersion: bool = False


class RunArtifactPublic(BaseModel):
    """A Prefect artifact of the run's flow run (``kind`` markdown, table...), or a step
    output stored out of line (``kind`` output: fetch it from ``url``)."""

    id: str
    kind: str
    description: str | None = None
    data: Any = None
    stepId: str | None = None
    storage: str | None = None
    key: str | None = None
    bytes: int | None = None
    url: str | None = None
    prefectFlowRunId: str | None = None
    createdAt: int

    @classmethod
    def of(cls, run_id: str, a: Any) -> RunArtifactPublic:
        url = f"/v1/runs/{run_id}/steps/{a.id}/output" if a.kind == "output" else None
        return cls(
            id=a.id,
            kind=a.kind,
            description=a.description,
            data=a.data,
            stepId=a.step_id,
            storage=a.storage,
            key=a.key,
            bytes=a.bytes,
            url=url,
            prefectFlowRunId=a.prefect_flow_run_id,
            createdAt=a.created_at,
        )


class RunArtifactsPage(Page):
    data: list[RunArtifactPublic]
    prefectError: str | None = Field(
        None, description="why the Prefect artifacts are missing, when Prefect did not answer"
    )
