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
        from orbin_flows.lineage import dead_letter_emit, emit_depth, emit_key
        from tenancy.config import get_settings
        from tenancy.db import session_scope

        # One idempotency key per step of a run: a retried or recovered step emits once.
        key = emit_key(ctx.run_id, ctx.step_id)
        limit = get_settings().emit_max_depth

        def emit() -> dict[str, Any]:
            with session_scope() as session:
                depth = emit_depth(
                    session, organization_id=ctx.organization_id, run_id=ctx.run_id, limit=limit
                )
                if depth >= limit:
                    reason = (
                        f"emit chain deeper than {limit} (ORBIN_EMIT_MAX_DEPTH): a loop of "
                        "workflows starting each other? Nothing started."
                    )
                    event = dead_letter_emit(
                        session,
                        organization_id=ctx.organization_id,
                        event_type=config.type,
                        source=config.source,
                        data=config.data,
                        key=key,
                        reason=reason,
                    )
                    return {
                        "id": event.id,
                        "eventId": event.id,
                        "idempotencyKey": key,
                        "runIds": [],
                        "deadLetter": reason,
                    }
            result = ingest_as_system(
                organization_id=ctx.organization_id,
                event_type=config.type,
                source=config.source,
                data=config.data,
                idempotency_key=key,
            )
            return {
                "id": result.event_pk,
                "eventId": result.event_pk,
                "idempotencyKey": key,
                "runIds": result.run_ids,
            }

        return await asyncio.to_thread(emit)
