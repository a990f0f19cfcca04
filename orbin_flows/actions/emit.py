"""``emit``: send a new event into the same organization; it may start other workflows."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from orbin_flows.actions.base import Action, ActionConfig, StepContext, register


class EmitConfig(ActionConfig):
    type: str = Field(min_length=1, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)
    source: str = "workflow"


@register
class Emit(Action):
    name = "emit"
    Config = EmitConfig

    async def run(self, config: EmitConfig, ctx: StepContext) -> Any:
        import asyncio

        from orbin_flows.ingest import ingest_as_system

        # One idempotency key per step of a run: a retried or recovered step emits once.
        key = f"emit:{ctx.run_id}:{ctx.step_id}"
        result = await asyncio.to_thread(
            ingest_as_system,
            organization_id=ctx.organization_id,
            event_type=config.type,
            source=config.source,
            data=config.data,
            idempotency_key=key,
        )
        return {"eventId": result.event_id, "runIds": result.run_ids}
