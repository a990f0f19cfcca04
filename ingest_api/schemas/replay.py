"""Replaying stored events and handling dead letters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest_api.schemas.events import EventPublic


class EventFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(None, description="an event type, or a prefix pattern: order.*")
    source: str | None = None
    status: Literal["pending", "processed", "failed", "discarded"] | None = None
    since: int | str | None = Field(None, description="ms since the epoch, or ISO 8601")
    until: int | str | None = Field(None, description="ms since the epoch, or ISO 8601 (excluded)")


class ReplayIn(BaseModel):
    """Either ``ids`` or ``filter`` (the newest ``limit`` matching events, replayed oldest
    first)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(None, max_length=100)
    filter: EventFilter | None = None
    limit: int = Field(100, ge=1, le=100)


class Replayed(EventPublic):
    """The event as it now is, and the runs this call started (``runIds`` holds them all)."""

    startedRunIds: list[str]

    @classmethod
    def of_replay(cls, event: Any, started: list[str]) -> Replayed:
        return cls(**EventPublic.of(event).model_dump(), startedRunIds=started)


class ReplayedMany(BaseModel):
    count: int
    runCount: int
    data: list[Replayed]
