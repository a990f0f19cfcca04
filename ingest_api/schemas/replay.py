"""Replaying stored events and handling dead letters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EventFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str | None = Field(None, description="an event type, or a prefix pattern: order.*")
    source: str | None = None
    status: Literal["pending", "processed", "failed", "discarded"] | None = None
    since: int | None = Field(None, description="ms since the epoch")
    until: int | None = Field(None, description="ms since the epoch (excluded)")


class ReplayIn(BaseModel):
    """Either ``ids`` or ``filter`` (the newest ``limit`` matching events, replayed oldest
    first)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(None, max_length=100)
    filter: EventFilter | None = None
    limit: int = Field(100, ge=1, le=100)


class Replayed(BaseModel):
    id: str
    status: str
    runIds: list[str]


class ReplayedMany(BaseModel):
    count: int
    runCount: int
    data: list[Replayed]
