"""Bodies of the AI routes (answers are documented in the README: fixed JSON shapes)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateIn(_In):
    prompt: str = Field(min_length=1, max_length=20_000, description="what the workflow does")
    eventTypes: list[str] | None = Field(
        default=None, max_length=100, description="event types the trigger may use"
    )


class SuggestIn(_In):
    after: str | None = Field(default=None, description="propose steps after this step id")


class DiagnoseIn(_In):
    pass


class OptimizeIn(_In):
    pass
