"""AI assistance: generate, suggest, diagnose, optimize; status and metered usage.

The long routes hold no database session while the model thinks: the service opens short
ones of its own (on SQLite a session held for seconds would block every writer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from ingest_api.deps import Allowed, CurrentPrincipal, SessionDep
from ingest_api.schemas.ai import DiagnoseIn, GenerateIn, OptimizeIn, SuggestIn
from orbin_flows import ai
from tenancy.clock import now_ms, parse_instant

router = APIRouter(prefix="/v1/ai", tags=["ai"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid request, or the model's answer still invalid after repairs"},
    429: {"description": "the organization's AI requests per minute are used up"},
    503: {"description": "AI not configured (ai_not_configured) or the model server failed"},
}


@router.get("/status")
def status(principal: CurrentPrincipal) -> dict[str, Any]:
    """Whether AI assistance is configured, and for this caller allowed."""
    return ai.ai_status(principal)


@router.post("/workflows/generate", responses=_ERRORS)
async def generate(body: GenerateIn, principal: Allowed("ai:use")) -> dict[str, Any]:
    """A workflow spec from plain language, validated (and repaired) but not saved:
    ``{"spec", "explanation", "warnings"}``. Save it with ``POST /v1/workflows``."""
    return await ai.generate_workflow(principal, prompt=body.prompt, event_types=body.eventTypes)


@router.post("/workflows/{workflow_id}/suggest", responses=_ERRORS)
async def suggest(
    workflow_id: str, principal: Allowed("ai:use"), body: SuggestIn | None = Body(None)
) -> dict[str, Any]:
    """Proposed next steps: ``{"steps": [{"step", "reason"}]}``, each valid in the spec."""
    after = body.after if body else None
    return await ai.suggest_steps(principal, workflow_id=workflow_id, after=after)


@router.post("/runs/{run_id}/diagnose", responses=_ERRORS)
async def diagnose(
    run_id: str, principal: Allowed("ai:use"), body: DiagnoseIn | None = Body(None)
) -> dict[str, Any]:
    """Why a failed run failed: ``{"summary", "likelyCause", "suggestedFix", "specPatch"?}``."""
    return await ai.diagnose_run(principal, run_id=run_id)


@router.post("/workflows/{workflow_id}/optimize", responses=_ERRORS)
async def optimize(
    workflow_id: str, principal: Allowed("ai:use"), body: OptimizeIn | None = Body(None)
) -> dict[str, Any]:
    """Hints from the last runs: ``{"suggestions": [{"title", "detail", "specPatch"?}]}``."""
    return await ai.optimize_workflow(principal, workflow_id=workflow_id)


@router.get("/usage")
def usage(
    session: SessionDep,
    principal: Allowed("ai:use"),
    start: str | None = Query(
        None, max_length=40, description="ms since the epoch or ISO 8601; default 30 days ago"
    ),
    end: str | None = Query(
        None, max_length=40, description="ms since the epoch or ISO 8601; default now"
    ),
) -> dict[str, Any]:
    """AI calls and tokens of this organization, per feature."""
    end_ms = parse_instant(end, field="end")
    end_ms = end_ms if end_ms is not None else now_ms() + 1
    start_ms = parse_instant(start, field="start")
    start_ms = start_ms if start_ms is not None else end_ms - 30 * 86_400_000
    return ai.read_usage(session, principal, start_ms, end_ms)
