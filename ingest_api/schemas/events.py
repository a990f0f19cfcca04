"""The event ingestion contract."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ingest_api.schemas.common import Page
from ingest_api.schemas.runs import RunPublic
from tenancy.events import idempotency_key


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
    id: str | None = Field(None, description="the event's id (GET /v1/events/{id})")
    eventId: str | None = Field(None, description="an alias of id")
    idempotencyKey: str | None = None
    runIds: list[str] | None = None
    error: dict[str, Any] | None = None


class BatchAccepted(BaseModel):
    results: list[BatchItemResult]


class EventAccepted(BaseModel):
    """The event's fields that never change: an idempotent repeat is answered the same."""

    received: bool = True
    id: str = Field(description="the event's id: GET /v1/events/{id}, replay, ...")
    eventId: str = Field(description="an alias of id")
    idempotencyKey: str | None = None
    type: str
    source: str
    receivedAt: int = Field(description="ms since the epoch")
    runIds: list[str]


class EventPublic(BaseModel):
    """An event, the same in every answer: ingest, list, detail, stream and replay."""

    id: str
    type: str
    source: str
    data: Any = None
    status: str
    receivedAt: int
    processedAt: int | None = None
    error: str | None = None
    runIds: list[str]
    idempotencyKey: str | None = None

    @classmethod
    def of(cls, e: Any) -> EventPublic:
        return cls(
            id=e.id,
            type=e.event_type,
            source=e.source,
            data=e.payload,
            status=e.status,
            receivedAt=e.created_at,
            processedAt=e.processed_at,
            error=e.error,
            runIds=list(e.run_ids or []),
            idempotencyKey=idempotency_key(e),
        )


class EventDetail(EventPublic):
    runs: list[RunPublic]


class EventsPage(Page):
    data: list[EventPublic]
