"""The event ingestion contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-/]+$")
    source: str = Field(default="api", min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)


class BatchEventIn(EventIn):
    idempotencyKey: str | None = Field(  # noqa: N815 - the API's field name
        default=None,
        min_length=1,
        max_length=200,
        description="Like the x-idempotency-key header of a single event",
    )


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[BatchEventIn]


class BatchItemResult(BaseModel):
    index: int
    status: int = Field(description="202 accepted, 409 key reused, 422 invalid, 429 monthly limit")
    eventId: str | None = None
    runIds: list[str] | None = None
    error: dict[str, Any] | None = None


class BatchAccepted(BaseModel):
    results: list[BatchItemResult]


class EventAccepted(BaseModel):
    received: bool = True
    eventId: str
    runIds: list[str]


class EventPublic(BaseModel):
    id: str
    eventType: str
    eventId: str
    source: str
    payload: Any = None
    status: str
    error: str | None = None
    runIds: list[str]
    workflowId: str | None = None
    processedAt: int | None = None
    createdAt: int

    @classmethod
    def of(cls, e: Any) -> EventPublic:
        return cls(
            id=e.id,
            eventType=e.event_type,
            eventId=e.event_id,
            source=e.source,
            payload=e.payload,
            status=e.status,
            error=e.error,
            runIds=list(e.run_ids or []),
            workflowId=e.workflow_id,
            processedAt=e.processed_at,
            createdAt=e.created_at,
        )


class EventsPage(BaseModel):
    data: list[EventPublic]
    nextCursor: str | None = None
    hasMore: bool
